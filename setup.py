"""Packaging for slim_attention and vgg_patch."""
from setuptools import find_packages, setup

setup(
    name="slim-attention",
    version="0.1.0",
    description=("tf.contrib.slim that works on today's TensorFlow, slim-style "
                 "attention layers, and tensorflow-vgg's VGG19 patched with CBAM."),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.14",  # installed and tested: README "Requirements"
    packages=find_packages(exclude=("tests", "tests.*", "bench", "bench.*")),
    install_requires=[
        "tensorflow>=2.16",
        "tf-keras>=2.16",
        "tf-slim==1.1.0",
        "numpy>=1.26",
        "pillow>=9",
        "scikit-learn>=1.0",
        "tensorboard>=2.16,<3",  # TensorFlow 2.21 no longer pulls it in
    ],
    extras_require={"test": ["pytest>=7"]},
    entry_points={
        "console_scripts": [
            "vgg19-cbam-train=vgg_patch.cli.train:main",
            "vgg19-cbam-predict=vgg_patch.cli.predict:main",
            "slim-attention-train=vgg_patch.cli.slim_train:main",
            "slim-attention-predict=vgg_patch.cli.slim_predict:main",
        ],
    },
)
