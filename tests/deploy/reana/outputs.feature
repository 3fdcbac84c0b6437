# REANA test of the preserved WIMP search (reana-client test, REANA >= 0.95).
# Steps are REANA's Gherkin vocabulary (reana_commons.gherkin_parser); checked in CI by
# .ci/stages/reana.sh against a local run of the workflow.

Feature: Outputs of the preserved WIMP search

    As an analyst rerunning the preserved analysis on REANA,
    I want every published product to be in the workspace,
    So that the likelihood, the limits and the HEPData record can be reused.

    Scenario: The workflow finishes and keeps every declared output
        When the workflow is finished
        Then the workflow status should be "finished"
        And all the outputs should be included in the workspace

    Scenario: The serialized likelihood exists
        When the workflow is finished
        Then the workspace should contain "results/likelihood/BkgOnly.json"
        And the workspace should contain "results/likelihood/patchset.json"

    Scenario: The limits and the HEPData record exist
        When the workflow is finished
        Then the workspace should contain "results/limits/limits.csv"
        And the workspace should contain "results/limits/limits.json"
        And the workspace should contain "results/hepdata/submission.tar.gz"
        And the workspace should contain "results/plots/limits.png"

    Scenario: Provenance is recorded
        When the workflow is finished
        Then the workspace should contain "results/provenance.json"
        And the file "results/provenance.json" should include "container_image"
