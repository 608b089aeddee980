"""plano: a hosting platform for many NestJS + Next.js apps on one server."""

__version__ = "0.1.0"
