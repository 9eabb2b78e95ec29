"""Ephys ingestion: pure-Python/numpy readers, and the database layer that uses them.

Pure modules (no Django models, no database): errors, geometry, spikeglx, sorting
(SortingResult), phy, jrclust, bitcode, discovery, synthetic (test/benchmark data generator).
Database layer: ``db_discovery`` (scans the ephys roots, records session folders as
``EphysRecording`` / ``SortedOutput``) and ``service`` (the EphysIngest step's make, see
``ephys/steps.py``).

The call sequence of one probe, as ``service.ingest_probe`` runs it (spec §14.3-§14.7)::

    found = discovery.examine_session_dir(folder)     # or discover_session(roots, h2o, when)
    probes = discovery.find_probe_recordings(found.session, h2o)
    for number, rec in probes.items():                # number = ProbeInsertion.insertion_number
        meta = rec.read_meta()                        # spikeglx.SpikeGLXMeta
        meta.probe_type, meta.serial_number, meta.sampling_rate, meta.electrode_config
        sorting = discovery.load_clustering(rec.clustering, meta)   # phy or JRClust loader
        bf = bitcode.read_bitcode_mat(bitcode.find_bitcode_mat(rec.probe_dir, h2o))
        al = bitcode.align_trials(bf.bitcodes, bf.trial_starts, bf.go_cues,
                                  behavior_bitcodes, bf.trial_num,
                                  free_water_trials=..., sampling_rate=sorting.sampling_rate,
                                  margin_samples=meta.pretrigger_margin_samples, source=bf.path)
        # (no bitcode.mat: bitcode.read_ni_bitcodes(rec.probe_dir.parent) + align_ni_trials)
        seconds = bitcode.spike_times_relative(sorting.spike_samples, al, sorting.sampling_rate)
        for i, (unit, sl) in enumerate(sorting.iter_units()):
            spike_times = seconds[sl]                 # UnitSpikes.spike_times (a view)
            electrode = meta.sites_to_electrodes(sorting.unit_peak_site[i : i + 1])[0]
"""
