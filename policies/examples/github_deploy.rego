# Example entrypoint for GitHub Actions: per-route rules from data.routes (see
# github_deploy.data.json), each route carrying a `github_actions` rule (fields: see
# ../github_actions.rego). Evaluate `data.gateward.examples.github_deploy.decision`, or load
# gateward.rego beside it for the default entrypoint `data.gateward.decision`.
#
# Modules: ../common.rego, ../github_actions.rego, this file.
package gateward.examples.github_deploy

import rego.v1

import data.gateward.common
import data.gateward.github_actions as gh

claims := input.token.claims

# The most specific routes for this request that take GitHub Actions tokens from its issuer.
routes := common.routes_for("github_actions")

applies if count(routes) > 0

allowing := [r | some r in routes; gh.allowed(r.github_actions)]

default decision := {"allow": false, "reason": "no route allows this request"}

decision := {"allow": false, "reason": common.unrouted_reason} if not applies

decision := {
	"allow": true,
	"reason": sprintf("route %s: %s at %s", [r.name, claims.repository, claims.ref]),
	"headers": {
		"x-gateward-route": r.name,
		"x-ci-repository": claims.repository,
		"x-ci-repository-id": claims.repository_id,
		"x-ci-ref": claims.ref,
		"x-ci-sha": claims.sha,
	},
} if {
	count(allowing) > 0
	r := allowing[0]
}

decision := {"allow": false, "reason": sprintf("route %s: %s", [r.name, gh.denial(r.github_actions)])} if {
	applies
	count(allowing) == 0
	r := routes[0]
}
