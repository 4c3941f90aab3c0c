"""People: users and roles, passwords, access and refresh tokens, login rate limits."""
