"""Pure-Python/numpy ephys ingestion: file discovery, SpikeGLX metadata, spike-sorter loaders,
bitcode trial alignment and a synthetic-session generator.

Nothing here touches Django models or the database; the DB-writing services consume the
dataclasses returned by these modules (see each module's docstring).
"""
