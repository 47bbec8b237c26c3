"""The `ocimg` command line. The only place where errors become messages and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from ocimg import __version__

DEFAULT_ROOT = "/var/lib/ocimg"
PLATFORM_HELP = "os/arch[/variant] of a name stored for several platforms (default: this host's)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ocimg", description="OCI images into runtime bundles.")
    p.add_argument("--version", action="version", version=f"ocimg {__version__}")
    p.add_argument("--root", default=os.environ.get("OCIMG_ROOT", DEFAULT_ROOT),
                   help="the local store (an OCI image layout; default %(default)s)")
    p.add_argument("--config", help="settings file (default $OCIMG_CONFIG or /etc/ocimg/config.toml)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    pull = sub.add_parser("pull", help="pull an image from a registry into the store")
    pull.add_argument("reference")
    pull.add_argument("--insecure", action="store_true",
                      help="allow plain HTTP and unverified TLS for this registry")
    pull.add_argument("--platform", help="os/arch[/variant] (default: this host's)")
    pull.add_argument("--authfile", help="credentials file (containers auth.json / docker config.json)")
    pull.add_argument("--cert-dir", help="directory with this registry's CA (*.crt) and client certs")
    pull.add_argument("--jobs", type=int, default=3, help="layers fetched at once (default %(default)s)")
    pull.add_argument("--quiet", "-q", action="store_true", help="no progress display")

    push = sub.add_parser("push", help="push an image from the store to a registry")
    push.add_argument("reference", metavar="REF")
    push.add_argument("dest", metavar="DEST", nargs="?", help="registry/repository[:tag] (default: REF's name)")
    push.add_argument("--insecure", action="store_true",
                      help="allow plain HTTP and unverified TLS for this registry")
    push.add_argument("--platform", help=PLATFORM_HELP)
    push.add_argument("--authfile", help="credentials file (containers auth.json / docker config.json)")
    push.add_argument("--cert-dir", help="directory with this registry's CA (*.crt) and client certs")
    push.add_argument("--chunk-size", type=int, default=16 << 20,
                      help="blobs larger than this many bytes go up in chunks of it (default %(default)s)")

    login = sub.add_parser("login", help="check credentials with a registry and save them for pull and push")
    login.add_argument("registry", metavar="REGISTRY", help="host[:port]")
    login.add_argument("--username", "-u", help="(default: asked on the terminal)")
    login.add_argument("--password-stdin", action="store_true",
                       help="read the password from stdin (default: asked on the terminal)")
    login.add_argument("--authfile", help="credentials file (default $REGISTRY_AUTH_FILE, "
                                          "$XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json)")
    login.add_argument("--insecure", action="store_true", help="allow plain HTTP and unverified TLS")
    login.add_argument("--cert-dir", help="directory with this registry's CA (*.crt) and client certs")

    logout = sub.add_parser("logout", help="remove a registry's saved credentials")
    logout.add_argument("registry", metavar="REGISTRY", nargs="?", help="host[:port]")
    logout.add_argument("--all", action="store_true", help="every registry's")
    logout.add_argument("--authfile", help="credentials file (default: as login)")

    images = sub.add_parser("images", help="list images in the store")
    images.add_argument("--quiet", "-q", action="store_true", help="names only")

    inspect = sub.add_parser("inspect", help="show an image's manifest digest, platform, layers and config")
    inspect.add_argument("reference")
    inspect.add_argument("--platform", help=PLATFORM_HELP)

    rm = sub.add_parser("rm", help="remove image names from the store (then `ocimg gc` frees space)")
    rm.add_argument("references", nargs="+")
    rm.add_argument("--platform", help="remove only this platform's entry (default: the name for every platform)")

    com = sub.add_parser("commit", help="make a bundle's changes a new image: one layer on top of the bundle's "
                                        "image")
    com.add_argument("bundle", metavar="BUNDLE")
    com.add_argument("reference", metavar="REF")
    com.add_argument("--compression", choices=("gzip", "zstd"), default="gzip",
                     help="of the new layer (default %(default)s)")
    com.add_argument("--message", "-m", help="comment of the new history entry")

    tag = sub.add_parser("tag", help="give an image in the store another name (the same manifest)")
    tag.add_argument("source", metavar="SRC")
    tag.add_argument("dest", metavar="DST")
    tag.add_argument("--platform", help=PLATFORM_HELP)

    sub.add_parser("gc", help="delete blobs and unpacked layers that no image or bundle uses")

    mnt = sub.add_parser("mount", help="mount an overlay bundle's rootfs again (after a reboot), keeping its "
                                       "writable layer")
    mnt.add_argument("dir", metavar="DIR", nargs="?")
    mnt.add_argument("--all", action="store_true", help="every overlay bundle made from this store (at boot)")

    imp = sub.add_parser("import", help="import images from an OCI layout directory or tar archive")
    imp.add_argument("source")
    imp.add_argument("reference", nargs="?", help="name for the image (when the layout names it by tag only)")

    exp = sub.add_parser("export", help="export an image as an OCI layout directory, or a .tar archive of one")
    exp.add_argument("reference")
    exp.add_argument("dest")
    exp.add_argument("--name", help="ref.name to give it in the layout (default: its full reference)")
    exp.add_argument("--platform", help=PLATFORM_HELP)

    b = sub.add_parser("bundle", help="make a runtime bundle from an image: bundle REF DIR [-- ARGS...]",
                       description="Make an OCI runtime bundle DIR from image REF. Words after `--` "
                                   "replace the image's Cmd. `bundle --remove DIR` undoes it.")
    b.add_argument("targets", nargs="+", metavar="REF DIR")
    b.add_argument("--remove", action="store_true", help="unmount and delete the bundle DIR")
    b.add_argument("--force", action="store_true",
                   help="with --remove: even while a container runs from DIR (its writable layer is lost)")
    b.add_argument("--platform", help=PLATFORM_HELP)
    b.add_argument("--mode", choices=("overlay", "copy"),
                   help="rootfs: overlay of shared layers (default where overlayfs works) or a private copy")
    b.add_argument("--env", "-e", action="append", default=[], metavar="KEY=VALUE")
    b.add_argument("--hostname")
    b.add_argument("--mount", action="append", default=[], metavar="SRC:DST[:ro]", help="add a bind mount")
    b.add_argument("--entrypoint", help="replace the Entrypoint (a word or a JSON list)")
    b.add_argument("--cwd", help="replace the WorkingDir")
    b.add_argument("--caps", choices=("container", "runc"), default="container",
                   help="capability set: podman's container default, or runc spec's three (default %(default)s)")
    b.add_argument("--tty", "-t", action="store_true", help="give the process a terminal")
    b.add_argument("--net", choices=("none", "host"), default="none",
                   help="own network namespace (loopback only), or the host's")
    b.add_argument("--read-only", action="store_true", help="mount the rootfs read-only in the container")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from ocimg.errors import OcimgError  # noqa: PLC0415 -- keep `--help` cheap

    extra: list[str] | None = None
    if "bundle" in argv and "--" in argv[argv.index("bundle"):]:
        cut = argv.index("--", argv.index("bundle"))
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _run(args, extra)
    except OcimgError as e:
        print(f"ocimg: {e}", file=sys.stderr)
        return e.exit_code
    except PermissionError as e:
        print(f"ocimg: {e.filename or ''}: permission denied (ocimg needs root)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ocimg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def _run(args: argparse.Namespace, extra: list[str] | None) -> int:
    from ocimg.errors import UsageError
    from ocimg.store import Store

    cmd = args.command
    if cmd == "login":
        return _login(args)
    if cmd == "logout":
        return _logout(args)
    store = Store(args.root)
    if cmd == "pull":
        return _pull(args, store)
    if cmd == "push":
        return _push(args, store)
    if cmd == "images":
        rows = store.images()
        if args.quiet:
            for name, _ in rows:
                print(name)
            return 0
        print(f"{'NAME':<60} {'DIGEST':<19} PLATFORM")
        for name, d in sorted(rows, key=lambda r: r[0]):
            plat = str(d.platform) if d.platform else ""
            print(f"{name:<60} {d.digest.algorithm}:{d.digest.short} {plat}")
        return 0
    if cmd == "inspect":
        img = store.image(args.reference, _platform(args))
        doc = {
            "Name": img.name,
            "Digest": str(img.digest),
            "MediaType": img.manifest.media_type,
            "Platform": str(img.config.platform),
            "Layers": [{"digest": str(l.digest), "size": l.size, "mediaType": l.media_type, "diffID": str(di)}
                       for l, di in zip(img.manifest.layers, img.config.diff_ids)],
            "Config": img.config.raw,
        }
        print(json.dumps(doc, indent=2))
        return 0
    if cmd == "rm":
        for r in args.references:
            print(f"Untagged {store.remove(r, _platform(args))}")
        return 0
    if cmd == "commit":
        from ocimg.commit import commit

        image = commit(store, args.bundle, args.reference, args.compression, args.message)
        print(f"{image.name} {image.digest}")
        return 0
    if cmd == "tag":
        if not os.path.isdir(store.root):
            store.image(args.source)  # the not-found error, without creating an empty store
        src, dst = store.tag(args.source, args.dest, _platform(args))
        print(f"Tagged {src} as {dst}")
        return 0
    if cmd == "gc":
        if not os.path.isdir(store.root):
            return 0
        blobs, layers = store.gc()
        print(f"removed {len(blobs)} blobs and {len(layers)} unpacked layers")
        return 0
    if cmd == "mount":
        from ocimg import bundle

        if args.all == bool(args.dir):
            raise UsageError("usage: ocimg mount DIR | ocimg mount --all")
        dirs = [rec["dir"] for rec in store.bundle_records() if bundle.is_bundle(rec.get("dir", ""))] \
            if args.all else [args.dir]
        for d in dirs:
            done = bundle.mount(d)  # from the store the bundle was made from (bundle.json)
            print(f"{os.path.abspath(d)}/rootfs {'mounted' if done else 'needs no mount'}")
        return 0
    if cmd == "import":
        from ocimg.archive import import_

        for name in import_(store, args.source, args.reference):
            print(f"Imported {name}")
        return 0
    if cmd == "export":
        from ocimg.archive import export

        label = export(store, args.reference, args.dest, args.name, _platform(args))
        print(f"Exported {label} to {args.dest}")
        return 0
    if cmd == "bundle":
        from ocimg import bundle

        if args.remove:
            if len(args.targets) != 1 or extra:
                raise UsageError("usage: ocimg bundle --remove DIR")
            bundle.remove(args.targets[0], store if os.path.isdir(store.root) else None, force=args.force)
            return 0
        if len(args.targets) != 2:
            raise UsageError("usage: ocimg bundle [options] REF DIR [-- ARGS...]")
        return _bundle(args, store, extra)
    raise UsageError(f"unknown command {cmd}")


def _platform(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ocimg.manifest import Platform

    return Platform.parse(args.platform) if args.platform else None


def _pull(args: argparse.Namespace, store) -> int:  # type: ignore[no-untyped-def]
    from ocimg import config, progress, reference
    from ocimg.pull import make_client, pull

    ref = reference.parse(args.reference)
    cfg = config.load(args.config)
    client = make_client(ref, cfg, insecure=args.insecure, auth_file=args.authfile, cert_dir=args.cert_dir)
    plat = _platform(args)
    with progress.for_stream(sys.stderr, False if args.quiet else None) as prog:
        result = pull(store, ref, client, plat, prog, jobs=args.jobs)
    print(f"{result.image.name} {result.image.digest}")
    return 0


def _push(args: argparse.Namespace, store) -> int:  # type: ignore[no-untyped-def]
    from ocimg import config
    from ocimg.errors import UsageError
    from ocimg.pull import make_client
    from ocimg.push import destination, push

    if args.chunk_size < 1:
        raise UsageError("--chunk-size must be a positive number of bytes")
    if not os.path.isdir(store.root):
        store.image(args.reference)  # the not-found error, without creating an empty store
    dest = destination(args.dest or store.lookup(args.reference, _platform(args))[0])
    cfg = config.load(args.config)
    client = make_client(dest, cfg, insecure=args.insecure, auth_file=args.authfile, cert_dir=args.cert_dir)
    result = push(store, args.reference, dest, client, _platform(args), args.chunk_size)
    mounted = f", {result.mounted} mounted from {result.mounted_from}" if result.mounted else ""
    print(f"{result.dest}@{result.digest} ({result.pushed} blobs pushed{mounted}, {result.skipped} already there)")
    return 0


def _login(args: argparse.Namespace) -> int:
    from ocimg import config
    from ocimg.errors import UsageError
    from ocimg.login import login
    from ocimg.reference import parse_registry
    from ocimg.registry.auth import Credentials

    registry = parse_registry(args.registry)
    cfg = config.load(args.config)
    interactive = sys.stdin.isatty()
    user = args.username
    if user is None:
        if args.password_stdin or not interactive:
            raise UsageError("login: give --username (there is no terminal to ask on)")
        user = input("Username: ")
    if args.password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    elif interactive:
        import getpass

        password = getpass.getpass("Password: ")
    else:
        raise UsageError("login: give the password on stdin with --password-stdin (there is no terminal to ask on)")
    if not user or ":" in user:
        raise UsageError("login: the username must be non-empty and without ':'")
    if not password:
        raise UsageError("login: the password is empty")
    login(registry, Credentials(user, password), cfg, args.authfile, args.insecure, args.cert_dir)
    print(f"Login Succeeded ({registry})")
    return 0


def _logout(args: argparse.Namespace) -> int:
    from ocimg import config
    from ocimg.errors import NotFound, UsageError
    from ocimg.login import logout
    from ocimg.reference import parse_registry

    if args.all == bool(args.registry):
        raise UsageError("usage: ocimg logout REGISTRY | ocimg logout --all")
    registry = None if args.all else parse_registry(args.registry)
    path, removed = logout(registry, config.load(args.config), args.authfile)
    if args.all:
        print(f"Removed every login from {path}")
    elif not removed:
        raise NotFound(f"not logged in to {registry} (no credentials in {path})")
    else:
        print(f"Removed login credentials for {registry}")
    return 0


def _bundle(args: argparse.Namespace, store, extra: list[str] | None) -> int:  # type: ignore[no-untyped-def]
    from ocimg import bundle
    from ocimg.convert import Options
    from ocimg.errors import UsageError

    binds = []
    for spec in args.mount:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1] or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise UsageError(f"invalid --mount {spec!r}: want SRC:DST[:ro|rw]")
        binds.append((os.path.abspath(parts[0]), parts[1], len(parts) == 3 and parts[2] == "ro"))
    entrypoint = None
    if args.entrypoint is not None:
        if args.entrypoint.startswith("["):
            try:
                entrypoint = json.loads(args.entrypoint)
            except ValueError:
                raise UsageError("--entrypoint: invalid JSON list") from None
            if not isinstance(entrypoint, list) or not all(isinstance(x, str) for x in entrypoint):
                raise UsageError("--entrypoint: want a JSON list of strings")
        else:
            entrypoint = [args.entrypoint] if args.entrypoint else []
    opts = Options(args=extra, entrypoint=entrypoint, env=args.env, hostname=args.hostname, binds=binds,
                   cwd=args.cwd, caps=args.caps, tty=args.tty, host_network=args.net == "host",
                   readonly_rootfs=args.read_only)
    ref, dest = args.targets
    if not os.path.isdir(store.root):
        store.image(ref)  # the not-found error, without creating an empty store
    store.init()
    with store.in_use():
        image = store.image(ref, _platform(args))
        info = bundle.create(store, image, dest, opts, args.mode)
    if info.reused:
        print(f"{info.dir} ({info.mode}) from {image.name}: an existing bundle, its config.json and writable "
              "layer kept")
        return 0
    print(f"{info.dir} ({info.mode}) from {image.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
