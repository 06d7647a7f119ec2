"""`plinth controller run`: the sync controller, in a cluster or against any kubeconfig."""
from __future__ import annotations

from pathlib import Path

import click


@click.group()
def controller() -> None:
    """Run the Plinth sync controller."""


@controller.command()
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False),
              envvar="KUBECONFIG", help="Kubeconfig to use; in a pod, the service account.")
@click.option("--namespace", "-n", "namespaces", multiple=True,
              help="Watch only these namespaces (glob patterns allowed); default: all.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("/tmp/plinth-controller"), show_default=True,
              help="Git mirrors and artifacts (an emptyDir in a pod).")
@click.option("--probe-address", default="0.0.0.0", show_default=True)
@click.option("--probe-port", type=int, default=8080, show_default=True,
              help="Port for /metrics, /healthz and /readyz.")
@click.option("--cluster-name", default="default", show_default=True,
              help="This cluster's name in commit status contexts (plinth/<cluster>/<name>).")
@click.option("--receiver-port", type=int, default=9292, show_default=True,
              help="Port for webhook receivers (POST /hook/<digest>).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--default-service-account", metavar="NAME",
              help="Kustomizations that name no serviceAccountName apply as this service "
                   "account of their namespace (multi-tenancy lockdown); default: the "
                   "controller's own rights.")
def run(kubeconfig: str | None, namespaces: tuple[str, ...], cache_dir: Path,
        probe_address: str, probe_port: int, cluster_name: str, receiver_port: int,
        log_level: str, default_service_account: str | None) -> None:
    """Reconcile GitRepository and Kustomization objects until stopped (SIGTERM / Ctrl-C).

    \b
    Examples:
      plinth controller run --kubeconfig .plinth/local/admin.kubeconfig
      plinth controller run -n 'team-*' --probe-port 9090
      plinth controller run --default-service-account deployer
    """
    # asyncio, logging, kopf and the Kubernetes client load here, not for `plinth --help`
    import asyncio

    from sync_controller import logs
    from sync_controller.operator import Controller, Options

    logs.configure(log_level)
    options = Options(kubeconfig, list(namespaces), cache_dir, probe_address, probe_port,
                      default_service_account, receiver_port, cluster_name)
    asyncio.run(Controller(options).run())
