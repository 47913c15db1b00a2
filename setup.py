"""ssvp-slt: sign-language video -> English text, as a fairseq plugin.

fairseq itself is not listed: the PyPI release 0.12.2 neither builds nor
imports on Python 3.11, and the working republish (``ve-fairseq``) declares
torchaudio, which would pull a second, incompatible torch. Install it with
``pip install --no-deps ve-fairseq==0.12.3`` (``make install`` does), then
this package, which lists fairseq's real runtime needs.

hiera-transformer (FAIR's Hiera, the architecture of SSVP-SLT's SignHiera) is not listed
either: it declares timm, whose import needs a torchvision built for the installed torch, and
PyPI's torchvision wheels are CUDA builds that do not load with a CPU-only torch. ``make
install`` installs it with ``--no-deps``; ``ssvp_plugin/models/hiera_package.py`` supplies the
two timm layers it uses when timm cannot be imported.
"""

from setuptools import find_packages, setup

setup(
    name="ssvp-slt",
    version="0.1.0",
    description="Sign-language video to English text (SSVP-SLT recipe) as a fairseq plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",  # numpy 2.4 (constraints.txt) needs 3.11
    packages=find_packages(include=["ssvp_plugin", "ssvp_plugin.*", "ssvp_slt", "ssvp_slt.*"]),
    install_requires=[
        # torch is installed first by `make install` (CPU build by default; see TORCH in the Makefile)
        "torch>=2.6",
        # fairseq 0.12 runtime needs (installed without its torchaudio pin)
        "numpy>=1.24",
        "cffi",
        "cython",
        "regex",
        "tqdm",
        "bitarray",
        "scikit-learn",
        "packaging",
        "hydra-core>=1.3.2,<1.4",
        "omegaconf>=2.3,<2.4",  # 2.4 rejects fairseq's adam_betas tuple strings
        # SLURM (configs/slurm/, ssvp_slt/launch/): `fairseq-hydra-train -m ... +slurm=4x8` submits through
        # hydra's documented SLURM launcher; submitit writes the sbatch script, runs the pickled job and requeues
        # it on timeout or pre-emption
        "hydra-submitit-launcher>=1.2,<1.3",
        "submitit>=1.5",
        # this project
        "av>=12",
        "sentencepiece>=0.1.99",
        "sacrebleu>=2.3",
        "jiwer>=3",
        "editdistance",  # fairseq's --scoring wer
        "pyyaml",
        "tensorboard",
        "tensorboardX",  # silences fairseq's notice and is what it logs with
        # face blurring (ssvp_slt/prep/face_blur.py, --blur-faces): the Haar cascades it
        # detects with ship inside the 4.x wheels; 5.x wheels dropped them (and CascadeClassifier)
        "opencv-python-headless>=4.5,<5",
        # scripts/convert_video_mae_checkpoint.py: Hugging Face publishes VideoMAE weights as .safetensors
        "safetensors>=0.4",
        # keypoints (ssvp_slt/keypoints/pose_file.py): reading/writing .pose files with the format's own parser;
        # pure Python, needs only numpy/tqdm/av already here (+ simple-video-utils, certifi); numpy 2 is fine
        "pose-format>=0.15,<0.16",
        # evaluation report and comparison (ssvp_slt/evaluation): ROUGE-L as SSVP-SLT reports it, METEOR (WordNet 3.0
        # is installed from Debian's packages by `make install`: ssvp_slt/evaluation/wordnet.py), the comparison figure
        "rouge-score>=0.1.2",
        "nltk>=3.9",
        "matplotlib>=3.8",
    ],
    extras_require={
        "dev": [
            "pytest>=7",
            "scikit-image",  # tests/test_face_blur.py: its bundled astronaut photo is the real test face
            # tests/test_convert_checkpoints.py: the reference VideoMAE the conversion is checked against
            # (a test dependency only: the plugin never imports it)
            "transformers>=4.40",
            "srt",  # tests/test_translate*.py: SRT read back by a parser
            "webvtt-py",  # tests/test_translate*.py: WebVTT read back by a parser
        ]
    },
    entry_points={
        "console_scripts": [
            "ssvp-slt-translate=ssvp_slt.translate:main",
            "ssvp-slt-download=ssvp_slt.download:main",
            "ssvp-slt-evaluate=ssvp_slt.evaluation.evaluate:main",
            "ssvp-slt-compare=ssvp_slt.evaluation.compare:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
