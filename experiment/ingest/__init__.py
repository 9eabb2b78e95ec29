"""Reading of raw behavior/ephys files into plain dataclasses (no Django models, no DB).

Keeping file parsing free of the ORM lets it be tested on real and synthetic files without a
database and lets the DB layer write every table from one parsed result.
"""
