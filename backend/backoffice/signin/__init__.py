"""Back-office sign-in: OpenID Connect (authorization code + PKCE, through Authlib) against
OIDC_ISSUER, or a password with the built-in issuer; attempt limits and bounded sessions.

* `claims`: which back-office roles a person's claims grant (ADMIN_ROLES_CLAIM);
* `provider`: the Authlib client, built from the discovery document token validation caches;
* `passwords`: the limited password backend, the attempt limits, the session lifetime;
* `views`, `urls`: /admin/oidc/login/, /admin/oidc/callback/ and /admin/logout/.
"""
