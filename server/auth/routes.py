"""URLs of the auth domain: login and logout, the session API, one's own password and the admin's
accounts (mounted by ``server.routes``)."""

from __future__ import annotations

from aiohttp import web

from server.auth import accounts, views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/login", views.login_page)
    r.add_post("/login", views.login_submit)
    r.add_post("/logout", views.logout)
    r.add_post("/api/v1/session", views.api_login)
    r.add_delete("/api/v1/session", views.api_logout)
    r.add_get("/api/v1/me", views.api_me)

    r.add_get("/account/password", accounts.password_page)
    r.add_post("/account/password", accounts.password_submit)
    r.add_post("/api/v1/me/password", accounts.api_change_password)
    r.add_get("/admin/accounts", accounts.accounts_page)
    r.add_post("/admin/accounts/{account_id}", accounts.accounts_submit)
    r.add_get("/api/v1/admin/accounts", accounts.api_list_accounts)
    r.add_post("/api/v1/admin/accounts/{account_id}/actions", accounts.api_account_action)
