"""`gtw keys rotate`: re-seal every stored provider key with the keyring's primary key, in
batches; `--new` first puts a fresh key at the head of the keyring file, `--drop-old` removes the
old keys once no stored key needs them. Interrupted, it resumes where it stopped when run again:
rows not yet re-sealed still open with the old key, which stays until `--drop-old`.
`gtw keys status`: the keyring's source and key ids, and how many stored keys each one seals."""

from __future__ import annotations

from collections import Counter

from gtw_site.cli.common import fail, setup_django


def add_keys_parser(sub) -> None:
    keys = sub.add_parser("keys", help="provider key encryption: status | rotate")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    keys_sub.add_parser("status", help="the keyring and which key seals how many stored keys")
    rotate = keys_sub.add_parser("rotate", help="re-seal every stored key with the primary key")
    rotate.add_argument("--new", action="store_true", help="first add a fresh primary key to the key file")
    rotate.add_argument("--drop-old", action="store_true", help="then remove keys no stored key needs")
    rotate.add_argument("--batch", type=int, default=100, help="rows per transaction (default 100)")
    keys.set_defaults(func=cmd_keys)


def cmd_keys(args) -> int:
    setup_django()
    from gtw_site import keys
    from gtw_site.models import ProviderKey
    from gtw_site.providers.services import keys_rotate

    try:
        if args.action == "status":
            ring = keys.keyring()
            counts = Counter(
                c.partition(":")[0] for c in ProviderKey.objects.values_list("ciphertext", flat=True)
            )
            print(f"keyring: {ring.source}")
            for kid, _ in ring.keys:
                mark = " (primary)" if kid == ring.primary_id else ""
                print(f"  {kid}{mark}: {counts.get(kid, 0)} stored key(s)")
            return 0
        if args.batch < 1:
            fail("--batch must be at least 1")
        result = keys_rotate(batch=args.batch, new_key=args.new, drop_old=args.drop_old, out=print)
    except keys.KeyUnavailable as exc:
        fail(str(exc))
    print(f"gtw: {result['resealed']} key(s) re-sealed, {result['dropped']} old key(s) dropped")
    return 0
