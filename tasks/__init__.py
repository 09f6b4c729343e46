"""Prefect tasks. Importing the package applies the embedded Prefect defaults first."""

from lake import prefect_env

prefect_env.apply()
