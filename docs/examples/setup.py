"""gwexample packaged with setuptools instead of a [project] table."""

from setuptools import find_packages, setup

setup(
    name="gwexample",
    version="1.0.0",
    description="The example girder-worker plugin: a Fibonacci task.",
    package_dir={"": "src"},
    packages=find_packages("src"),
    python_requires=">=3.10",
    install_requires=["girder-worker-utils>=1.0.0,<2"],
    entry_points={"girder_worker_plugins": ["gwexample = gwexample:GWExamplePlugin"]},
)
