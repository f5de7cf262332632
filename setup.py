"""Packaging for sfm-archiver."""
from setuptools import find_packages, setup

setup(
    name="sfm-archiver",
    version="0.1.0",
    description="Unattended social media archiving daemon that hands validated BagIt bags to preservation storage",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks"]),
    include_package_data=True,
    package_data={"sfm_archiver": ["demo/*.yaml", "simulator/*.yaml", "bagging/profiles/published/*"]},
    install_requires=[
        "tweepy>=4.17,<4.18",
        "apscheduler>=3.11,<4",
        "bagit>=1.8",
        "bagit-profile>=1.3.1,<2",
        "warcio>=1.7",
        "pyyaml>=6.0",
        "requests>=2.31",
        "urllib3>=2",
        "certifi",
        "xlsxwriter>=3.1",
        "pyarrow>=14",
        "msgspec>=0.18",
        "isal>=1.6",
        "apprise>=1.6",
        "prometheus_client>=0.17",
        "matplotlib>=3.7",
        "websockets>=13",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.5", "openpyxl>=3.1", "aiosmtpd>=1.4"],
    },
    entry_points={"console_scripts": ["sfm-archiver=sfm_archiver.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: System :: Archiving",
    ],
)
