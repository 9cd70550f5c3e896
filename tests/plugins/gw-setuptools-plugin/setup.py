from setuptools import setup

setup(
    name="gw-setuptools-plugin",
    version="0.1.0",
    description="A plugin packaged with setuptools, as the plugin guide shows.",
    packages=["gwsetuptools"],
    install_requires=["girder-worker-utils"],
    entry_points={"girder_worker_plugins": ["gwsetuptools = gwsetuptools:SetuptoolsPlugin"]},
)
