# Example entrypoint for CircleCI: per-route rules from data.routes (see circleci_artifacts.data.json),
# each route carrying a `circleci` rule (fields: see ../circleci.rego). Evaluate
# `data.gateward.examples.circleci_artifacts.decision`, or load gateward.rego beside it for the default
# entrypoint `data.gateward.decision`.
#
# Modules: ../common.rego, ../circleci.rego, this file.
package gateward.examples.circleci_artifacts

import rego.v1

import data.gateward.common
import data.gateward.circleci as cci

claims := input.token.claims

# The most specific routes for this request that take CircleCI tokens from its issuer.
routes := common.routes_for("circleci")

applies if count(routes) > 0

allowing := [r | some r in routes; cci.allowed(r.circleci)]

default decision := {"allow": false, "reason": "no route allows this request"}

decision := {"allow": false, "reason": common.unrouted_reason} if not applies

decision := {
	"allow": true,
	"reason": sprintf("route %s: %s at %s", [r.name, cci.claim("vcs-origin"), cci.claim("vcs-ref")]),
	"headers": {
		"x-gateward-route": r.name,
		"x-ci-project-id": cci.claim("project-id"),
		"x-ci-vcs-origin": cci.claim("vcs-origin"),
		"x-ci-ref": cci.claim("vcs-ref"),
	},
} if {
	count(allowing) > 0
	r := allowing[0]
}

decision := {"allow": false, "reason": sprintf("route %s: %s", [r.name, cci.denial(r.circleci)])} if {
	applies
	count(allowing) == 0
	r := routes[0]
}
