"""Operations: the project's container image and its apptainer SIF (:mod:`.image`)."""
