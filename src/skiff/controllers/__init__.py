"""Controllers: level-triggered reconcile loops over informer caches."""

from skiff.controllers.garbage_collector import GarbageCollector
from skiff.controllers.manager import run_controllers
from skiff.controllers.namespace import NamespaceController
from skiff.controllers.serviceaccounts import ServiceAccountsController

__all__ = [
    "GarbageCollector",
    "NamespaceController",
    "ServiceAccountsController",
    "run_controllers",
]
