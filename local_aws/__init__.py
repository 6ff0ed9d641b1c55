"""Local AWS for the demo and the tests: moto's server on 127.0.0.1 with the gaps of the
pinned moto closed where this project's CloudFormation flow needs it.

Run it with ``python -m local_aws`` from the repository root (see
server.py). The gaps, with the AWS behaviour each copies and where AWS documents it, are
listed in gaps.py; each is installed explicitly by server.start(), so importing a module
of this package patches nothing.

Modules: config (settings, the pinned moto), response_url (CloudFormation-shaped
pre-signed URLs, standard library only), events (stack events, ResourceFailed), efs,
secrets, templates, network (security groups, mount targets, routes), custom_resources,
stack_lifecycle, resource_import, resources (types moto skips), gaps (the registry), server.
"""
