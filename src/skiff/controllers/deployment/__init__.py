"""The Deployment controller (rolling updates, Recreate, revisions, progress)."""

from skiff.controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
