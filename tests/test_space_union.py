"""The address-space union against ipaddress's own: generated records of
nested, repeated, neighbouring and disjoint ranges of both families."""

from __future__ import annotations

import ipaddress
import random

from octodns_mailauth.spf.space import address_space


def test_generated_unions_match_ipaddress() -> None:
    rng = random.Random(4632)
    checked = 0
    for _ in range(400):
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for _ in range(rng.randint(0, 30)):
            if rng.random() < 0.7:
                prefix = rng.choice([0, 1, 8, 16, 23, 24, 24, 31, 32])
                address = rng.choice([0x0A000000, 0x0A000100, 0xC0000200]) + rng.randint(0, 511)
                nets.append(ipaddress.IPv4Network((address, prefix), strict=False))
            else:
                prefix = rng.choice([0, 32, 48, 64, 127, 128])
                address = (0x20010DB8 << 96) + rng.randint(0, 2**70)
                nets.append(ipaddress.IPv6Network((address, prefix), strict=False))
        nets += rng.sample(nets, min(len(nets), 3))  # repeats
        record = "v=spf1 " + " ".join(f"ip{n.version}:{n}" for n in nets) + " -all"
        space = address_space("p.example", record)
        for version, kept in ((4, space.v4), (6, space.v6)):
            mine = [n for n in nets if n.version == version]
            union = list(ipaddress.collapse_addresses(mine))  # type: ignore[arg-type]
            assert space.addresses(version) == sum(n.num_addresses for n in union)
            assert space.written[version] == len(mine)
            outermost = {n for n in mine if not any(n != o and n.subnet_of(o) for o in mine)}  # type: ignore[arg-type]
            assert kept == sorted(outermost)
            checked += 1
    assert checked == 800
