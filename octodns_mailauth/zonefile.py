"""A local target for previews and the demo: BIND zone files that remember.

octodns-bind's ZoneFileProvider rewrites its files from scratch on every sync,
so a second `octodns-sync` always plans everything again.  This target reads
its own files back when planning (so a second run plans nothing) and always
writes the whole desired zone.  Needs octodns-bind: the `bind` extra.
"""

from __future__ import annotations

from os.path import exists, join
from typing import Any

try:
    from octodns_bind import ZoneFileProvider
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "octodns_mailauth.zonefile.ZoneFileTarget writes BIND zone files with octodns-bind, "
        "which is not installed: pip install 'octodns-mailauth[bind]' (or pip install "
        "octodns-bind)"
    ) from e
from octodns.provider.plan import Plan
from octodns.record import Create


class ZoneFileTarget(ZoneFileProvider):  # type: ignore[misc]
    def __init__(
        self,
        id: str,
        directory: str,
        file_extension: str = ".zone",
        check_origin: bool = False,
        **kwargs: Any,
    ) -> None:
        # Defaults for a local preview: `<zone>.zone` files, and no NS required at
        # the origin (the zones it writes have none unless the config has them), so
        # reading its own files back works with just `directory:` set.
        super().__init__(
            id, directory, file_extension=file_extension, check_origin=check_origin, **kwargs
        )

    def _load_zone_file(self, zone_name: str, target: bool) -> Any:
        path = join(self.directory, f"{zone_name[:-1]}{self.file_extension}")
        if target and not exists(path):
            return None
        return super()._load_zone_file(zone_name, False)

    def zone_exists(self, zone: Any, target: bool = False) -> bool:
        return bool(super().zone_exists(zone, False))

    def _apply(self, plan: Any) -> Any:
        # The parent writes only `plan.changes`; hand it every desired record.
        full = Plan(
            plan.existing,
            plan.desired,
            [Create(r) for r in plan.desired.records],
            plan.exists,
        )
        return super()._apply(full)
