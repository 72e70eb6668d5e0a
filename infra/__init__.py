"""The Pulumi program's building blocks: stack settings, policies and component resources."""
