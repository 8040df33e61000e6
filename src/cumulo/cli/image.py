"""``cumulo image build <kind>``: build a guest image locally (registered by cli.main).

Images are made from Debian packages on this machine, never downloaded ready-made. The
output goes to ``<data_dir>/images`` unless ``--out`` says otherwise; a build whose inputs
have not changed is left as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cumulo.common.settings import Settings

KINDS = ("tiny", "debian")


def register(sub: Any) -> None:
    """Add ``cumulo image`` to the top-level parser's subparsers."""
    image = sub.add_parser("image", help="build guest images").add_subparsers(
        dest="image_cmd", required=True
    )
    build = image.add_parser(
        "build",
        help="build a guest image from Debian packages",
        description="Build a bootable guest image from Debian packages, without network "
        "access beyond the Debian mirror: 'tiny' (Debian's kernel, a busybox initramfs; "
        "seconds) or 'debian' (Debian 12 with cloud-init; minutes). A rebuild with unchanged "
        "inputs does nothing.",
    )
    build.add_argument(
        "kind", choices=KINDS, help="tiny: the busybox test guest; debian: Debian 12 + cloud-init"
    )
    build.add_argument("--mirror", default="", help="Debian mirror for debootstrap (debian)")
    build.add_argument("--out", help="output directory (default: <data_dir>/images)")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    build.set_defaults(fn=cmd_image_build)


def cmd_image_build(settings: Settings, args: argparse.Namespace) -> int:
    from cumulo.agent.images.kernel import ImageBuildError

    out = Path(args.out) if args.out else settings.data_dir / "images"
    try:
        if args.kind == "debian":
            return _build_debian(out, args)
        return _build_tiny(out, args)
    except ImageBuildError as exc:
        print(f"cumulo image build {args.kind}: {exc}", file=sys.stderr)
        return 1


def _build_tiny(out: Path, args: argparse.Namespace) -> int:
    from cumulo.agent.images.tiny import build_tiny

    image = build_tiny(out, force=args.force)
    print(f"{'built' if image.created else 'up to date'}: {image.disk}")
    print(f"sha256: {image.sha256}")
    print(f"direct boot: kernel={image.kernel} initrd={image.initrd} cmdline={image.cmdline!r}")
    return 0


def _build_debian(out: Path, args: argparse.Namespace) -> int:
    from cumulo.agent.images.debian import build_debian

    image = build_debian(out, mirror=args.mirror, force=args.force)
    print(f"{'built' if image.created else 'up to date'}: {image.disk}")
    print(f"sha256: {image.sha256}")
    return 0
