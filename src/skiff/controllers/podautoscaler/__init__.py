"""The HorizontalPodAutoscaler controller and its parts (metrics, calculator, rules)."""

from skiff.controllers.podautoscaler.controller import HorizontalPodAutoscalerController

__all__ = ["HorizontalPodAutoscalerController"]
