"""Step 2, selection: cuts declared as data (:mod:`.cuts`), applied in memory or streamed (:mod:`.stream`)."""
