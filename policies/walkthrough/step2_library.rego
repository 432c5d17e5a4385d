# Walkthrough step 2 (docs/policies.md): the same rule through the library, which adds the
# checks step 1 forgot and says which requirement failed.
package walkthrough.step2

import rego.v1

import data.gateward.github_actions as gh

deploy_rule := {
	"owner_id": "9919",
	"repository_ids": ["74839201"],
	"branches": ["main"],
	"environments": ["prod"],
	"events": ["push", "workflow_dispatch"],
}

is_deploy if {
	input.request.method == "POST"
	input.request.path == "/deploy"
}

default decision := {"allow": false, "reason": "no rule for this request"}

decision := {"allow": true} if {
	is_deploy
	gh.allowed(deploy_rule)
}

decision := {"allow": false, "reason": gh.denial(deploy_rule)} if {
	is_deploy
	not gh.allowed(deploy_rule)
}
