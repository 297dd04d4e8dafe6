"""Package discovery: every package under planner/ is found automatically, so a new subpackage
cannot be left out of the wheel; the YAML profile folders at the top level are installed as
`planner.hardware_profiles` and `planner.model_profiles` (see [tool.setuptools] in pyproject)."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["planner", "planner.*"]),
        "planner.hardware_profiles",
        "planner.model_profiles",
    ]
)
