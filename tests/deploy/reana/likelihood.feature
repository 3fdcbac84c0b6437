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
        And the sha256 checksum of the file "results/likelihood/BkgOnly.json" should be "bb4ed2f92bd8d80445d6a11765183cfafec8e4b6c811589634f69c803b813d20"
        And the sha256 checksum of the file "results/likelihood/patchset.json" should be "13cb199a2e6add9513c6e828dc6b7b6f240e13d433e3ae690a970dc9675fcb06"
