# REANA test of the preserved WIMP search: the serialized likelihood of the default analysis
# (inputs.parameters.input = workflow/config/config.yaml) is byte-identical to the published one.
# The digests change only when the analysis changes; update them from a run of the default
# configuration with: .ci/stages/reana.sh --update-checksums  (after `make run`).

Feature: Serialized likelihood

    As a reinterpreter of the search,
    I want the likelihood rerun on REANA to be exactly the published one,
    So that results derived from it stay valid.

    Scenario: The background-only workspace and the signal patchset are the published ones
        When the workflow is finished
        Then the workspace should contain "results/likelihood/BkgOnly.json"
        And the sha256 checksum of the file "results/likelihood/BkgOnly.json" should be "432c3ef8b4f68f2854d56de0a23b2322043f24f52ff54afe891419e02c6d4c44"
        And the sha256 checksum of the file "results/likelihood/patchset.json" should be "92d8cf6fbaeffce664535594d16b5eeed609738b5c909644dc4402d71c074ad9"
