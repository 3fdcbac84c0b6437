"""Steps 8-10, publishing: figures (:mod:`.figures` decides, :mod:`.plots` and :mod:`.plots_fit` draw),
the HEPData record (:mod:`.hepdata`, tables in :mod:`.hepdata_tables` and :mod:`.hepdata_fit_tables`)
and provenance (:mod:`.provenance`)."""
