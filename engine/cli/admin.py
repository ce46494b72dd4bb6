"""``campaign admin``: an organization's first user, its API keys (created, listed, revoked), its
users (listed, disabled), the contact lists API's ``api_user`` credentials, bots, and
re-encrypting stored credentials after a key rotation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.shared import (
    EXIT_BAD_INPUT,
    err_console,
    migrated_runtime,
    require_secret_key,
    run,
    setup,
)
from engine.db import session_scope

if TYPE_CHECKING:
    from engine.integrations.stored_secrets import Reencrypted

#: The ``admin`` command group.
admin_app = typer.Typer(help="Organizations, users and API keys.", no_args_is_help=True)


@admin_app.command("bootstrap")
def bootstrap(
    organization: Annotated[str, typer.Option(help="Organization name (created if new)")],
    user: Annotated[str, typer.Option(help="Username to create")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="At least 8 characters")
    ],
) -> None:
    """Create an organization's first user and an API key (printed once, stored hashed)."""
    rt = migrated_runtime()
    from engine.services.auth import bootstrap as make

    def create() -> tuple[str, str, str]:
        with session_scope(rt.engine) as session:
            org, account, key = make(session, organization, user, password)
            return org.id, account.id, key

    org_id, user_id, key = run(create)
    print(f"organization {org_id}\nuser {user_id}\napi key {key}")
    err_console.print("the API key is shown once: store it now")


@admin_app.command("create-key")
def create_key(
    organization: Annotated[str, typer.Option(help="Organization name")],
    name: Annotated[str, typer.Option(help="What the key is for")] = "",
) -> None:
    """Create another API key for an organization."""
    rt = migrated_runtime()
    from engine.campaigns.campaign import get_organization_by_name
    from engine.services.auth import create_api_key

    def create() -> str:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            return create_api_key(session, org.id, name)[1]

    print(f"api key {run(create)}")
    err_console.print("the API key is shown once: store it now")


@admin_app.command("list-keys")
def list_keys(organization: Annotated[str, typer.Option(help="Organization name")]) -> None:
    """List an organization's API keys: id, prefix, name, last use and revocation."""
    rt = migrated_runtime()
    from engine.campaigns.campaign import get_organization_by_name
    from engine.models.base import iso
    from engine.services.auth import KEY_PREFIX
    from engine.services.credentials import list_api_keys

    def rows() -> list[tuple[str, ...]]:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            return [
                (
                    k.id,
                    f"{KEY_PREFIX}{k.prefix}_…",
                    k.name,
                    iso(k.last_used_at) or "never",
                    f"revoked {iso(k.revoked_at)}" if k.revoked_at else "active",
                )
                for k in list_api_keys(session, org.id)
            ]

    _table(("id", "key", "name", "last used", "status"), run(rows))


@admin_app.command("revoke-key")
def revoke_key(
    organization: Annotated[str, typer.Option(help="Organization name")],
    key: Annotated[str, typer.Option(help="The key's id (key_…, see list-keys)")],
) -> None:
    """Revoke an API key: it answers 401 from the next request on."""
    rt = migrated_runtime()
    from engine.campaigns.campaign import get_organization_by_name
    from engine.services.credentials import revoke_api_key

    def revoke() -> str:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            return revoke_api_key(session, org.id, key).id

    print(f"revoked api key {run(revoke)}")


@admin_app.command("list-users")
def list_users(organization: Annotated[str, typer.Option(help="Organization name")]) -> None:
    """List an organization's users: id, username, and whether disabled."""
    rt = migrated_runtime()
    from engine.campaigns.campaign import get_organization_by_name
    from engine.models.base import iso
    from engine.services.credentials import list_users as users_of

    def rows() -> list[tuple[str, ...]]:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            return [
                (u.id, u.username, f"disabled {iso(u.disabled_at)}" if u.disabled_at else "active")
                for u in users_of(session, org.id)
            ]

    _table(("id", "username", "status"), run(rows))


@admin_app.command("disable-user")
def disable_user(
    organization: Annotated[str, typer.Option(help="Organization name")],
    user: Annotated[str, typer.Option(help="The username to disable")],
) -> None:
    """Disable a user: no more logins, and its access and refresh tokens stop working at once."""
    rt = migrated_runtime()
    from engine.campaigns.campaign import get_organization_by_name
    from engine.services.credentials import disable_user as disable
    from engine.services.credentials import find_user

    def run_disable() -> str:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            return disable(session, org.id, find_user(session, org.id, user).id).id

    print(f"disabled user {run(run_disable)}")


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print ``rows`` tab-separated under a header line (easy to read and to script)."""
    for row in (columns, *rows):
        print("\t".join(row))


@admin_app.command("create-api-user")
def create_api_user(
    organization: Annotated[str, typer.Option(help="Organization name")],
    list_name: Annotated[str, typer.Option("--list", help="Contact list (created if new)")],
    api_user: Annotated[str, typer.Option(help="The api_user of Basic api_user:api_key")],
) -> None:
    """Create the contact lists API's ``api_user:api_key`` credential for a contact list."""
    rt = migrated_runtime()
    from engine.campaigns.campaign import get_organization_by_name
    from engine.services.auth import create_api_user as make

    def create() -> str:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            return make(session, org.id, list_name, api_user)[1]

    print(f"api_user {api_user}\napi_key {run(create)}")
    err_console.print("the api_key is shown once: store it now")


@admin_app.command("create-bot")
def create_bot(
    organization: Annotated[str, typer.Option(help="Organization name")],
    name: Annotated[str, typer.Option(help="Bot name (unique in the organization)")],
    channel: Annotated[str, typer.Option(help="log, telegram, whatsapp, email, webhook, null")],
    account: Annotated[
        str | None, typer.Option(help="The organization's channel account it sends with")
    ] = None,
) -> None:
    """Create a bot of an organization for the builder's campaign module (bot campaigns API)."""
    rt = migrated_runtime()
    from engine.bots.actions import create_bot_for

    def create() -> str:
        with session_scope(rt.engine) as session:
            return create_bot_for(session, organization, name, channel, account).id

    print(f"bot {run(create)}")


@admin_app.command("rotate-secrets")
def rotate_secrets() -> None:
    """Encrypt every stored credential again with SECRET_KEY (after a key rotation).

    Run it once SECRET_KEY is the new key and SECRET_KEY_FALLBACKS holds the old ones; then the
    fallbacks are no longer needed to read credentials (links and tokens signed with them are
    another matter: see docs/security.md).
    """
    # Re-encrypting under a public key would hand every credential to anyone: refuse it first.
    require_secret_key(setup())
    rt = migrated_runtime()
    from engine.integrations.stored_secrets import reencrypt_stored

    def rotate() -> Reencrypted:
        with session_scope(rt.engine) as session:
            return reencrypt_stored(session, rt.settings.verification_keys)

    done = run(rotate)
    print(
        f"re-encrypted with SECRET_KEY: {done.accounts} channel accounts, {done.campaigns} "
        f"campaigns, {done.webhooks} webhooks"
    )
    if done.unreadable:
        err_console.print(
            f"[red]error[/red] CREDENTIALS_UNREADABLE: no key decrypts {', '.join(done.unreadable)}"
            "; add the key they were stored with to SECRET_KEY_FALLBACKS, or enter them again",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
