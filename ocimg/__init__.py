"""ocimg: OCI images (from a registry or an image layout) into runtime bundles.

Independent of ocirt's internals: ocirt never imports ocimg, and ocimg only produces
bundles that any OCI runtime can run.
"""

__version__ = "0.1.0"
