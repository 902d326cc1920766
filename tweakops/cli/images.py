"""`tweakops images`: make the offline base image, build the framework images, list them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from tweakops.images.build import (
    IMAGE_NAMES,
    OFFLINE_BASE,
    BuiltImage,
    build_base,
    build_image,
    list_images,
)
from tweakops.report.console import Console, render_table

base_option = click.option(
    "--base",
    "base_image",
    metavar="IMAGE",
    help="Base image (default: $TWEAKOPS_BASE_IMAGE, else tweakops/base:bookworm when built, "
    "else python:3.11-slim).",
)


def _wants_json(ctx: click.Context) -> bool:
    return bool((ctx.obj or {}).get("json"))


def _print_json(rows: Sequence[Any]) -> None:
    click.echo(json.dumps([dataclasses.asdict(row) for row in rows], indent=2))


@click.group("images")
def images_group() -> None:
    """Container images: the offline base and the keras / sklearn framework images."""


@images_group.command("base")
@click.option("--tag", default=OFFLINE_BASE, show_default=True, help="Tag of the base image.")
@click.option("--suite", default="bookworm", show_default=True, help="Debian suite.")
@click.option(
    "--mirror", default="http://deb.debian.org/debian", show_default=True, help="Debian mirror."
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the temporary root file system goes (default $TMPDIR; must allow exec and dev).",
)
@click.pass_context
def base_command(
    ctx: click.Context, tag: str, suite: str, mirror: str, workdir: Path | None
) -> None:
    """Make a minimal Debian image with python3 by debootstrap (needs root and debootstrap)."""
    result = build_base(tag, suite, mirror, Console(quiet=_wants_json(ctx)), workdir)
    if _wants_json(ctx):
        _print_json([result])


@images_group.command("build")
@click.argument("name", type=click.Choice([*IMAGE_NAMES, "all"]), default="all")
@base_option
@click.pass_context
def build_command(ctx: click.Context, name: str, base_image: str | None) -> None:
    """Build keras, sklearn or all images offline; unchanged images are not rebuilt."""
    console = Console(quiet=_wants_json(ctx))
    names = IMAGE_NAMES if name == "all" else (name,)
    results: list[BuiltImage] = [build_image(n, base_image, console) for n in names]
    if _wants_json(ctx):
        _print_json(results)
    elif len(results) > 1:
        built = sum(not r.cached for r in results)
        seconds = sum(r.seconds for r in results)
        console.say(
            f"{len(results)} images ready in {seconds:.1f} s "
            f"({built} built, {len(results) - built} cached)"
        )


@images_group.command("list")
@base_option
@click.pass_context
def list_command(ctx: click.Context, base_image: str | None) -> None:
    """Each recipe's current content tag and whether that image is built."""
    rows = list_images(base_image)
    if _wants_json(ctx):
        _print_json(rows)
        return
    table = [
        (
            row.name,
            row.tag,
            "yes" if row.present else "no",
            (row.image_id or "—").removeprefix("sha256:")[:12],
            "—" if row.size is None else f"{row.size / 1e6:.0f} MB",
            row.base_image,
        )
        for row in rows
    ]
    click.echo(render_table(("NAME", "TAG", "BUILT", "IMAGE ID", "SIZE", "BASE"), table))
