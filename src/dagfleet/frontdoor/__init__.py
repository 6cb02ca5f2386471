"""The front door: one authenticating proxy in front of the Dagster webserver.

roles (who may do what where), gate (GraphQL operations to actions), identity
(users, tokens, sessions), oidc (single sign-on), proxy (HTTP and websockets).
"""
