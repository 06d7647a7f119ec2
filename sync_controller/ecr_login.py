"""Registry logins for ECR hosts from the AWS API (boto3), cached until shortly before they
expire. Credentials come from the usual AWS chain: on EKS the controller's IRSA role."""
from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable


from sync_controller.registry_client import Login, RegistryError

ECR_HOST = re.compile(r"^(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)"
                      r"\.amazonaws\.com(?:\.cn)?$")
REFRESH_BEFORE = 600.0  # seconds: a token is replaced ten minutes before it expires


class EcrLogins:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._cache: dict[str, tuple[Login, float]] = {}
        self._lock = threading.Lock()

    def login(self, host: str) -> Login:
        """Blocking (boto3): call it from a thread."""
        match = ECR_HOST.match(host)
        if match is None:
            raise RegistryError(f"{host}: spec.provider aws needs an ECR host "
                                "(<account>.dkr.ecr.<region>.amazonaws.com)")
        with self._lock:
            cached = self._cache.get(host)
            if cached and cached[1] - REFRESH_BEFORE > self.clock():
                return cached[0]
        import boto3  # only where an ImageRepository says provider: aws (0.1 s at start-up)
        import botocore.exceptions

        try:
            client = boto3.client("ecr", region_name=match.group("region"))
            data = client.get_authorization_token(
                registryIds=[match.group("account")])["authorizationData"][0]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
            raise RegistryError(f"{host}: ECR authorization token: {err}") from None
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        login = Login(user, password)
        with self._lock:
            self._cache[host] = (login, data["expiresAt"].timestamp())
        return login
