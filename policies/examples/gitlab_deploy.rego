# Example entrypoint for GitLab CI/CD: per-route rules from data.routes (see gitlab_deploy.data.json),
# each route carrying a `gitlab` rule (fields: see ../gitlab.rego). Evaluate
# `data.gateward.examples.gitlab_deploy.decision`, or load gateward.rego beside it for the default
# entrypoint `data.gateward.decision`.
#
# Modules: ../common.rego, ../gitlab.rego, this file.
package gateward.examples.gitlab_deploy

import rego.v1

import data.gateward.common
import data.gateward.gitlab as gl

claims := input.token.claims

# The most specific routes for this request that take GitLab tokens from its issuer.
routes := common.routes_for("gitlab")

applies if count(routes) > 0

allowing := [r | some r in routes; gl.allowed(r.gitlab)]

default decision := {"allow": false, "reason": "no route allows this request"}

decision := {"allow": false, "reason": common.unrouted_reason} if not applies

decision := {
	"allow": true,
	"reason": sprintf("route %s: %s at %s %s", [r.name, claims.project_path, claims.ref_type, claims.ref]),
	"headers": {
		"x-gateward-route": r.name,
		"x-ci-project": claims.project_path,
		"x-ci-project-id": claims.project_id,
		"x-ci-ref": sprintf("%s:%s", [claims.ref_type, claims.ref]),
	},
} if {
	count(allowing) > 0
	r := allowing[0]
}

decision := {"allow": false, "reason": sprintf("route %s: %s", [r.name, gl.denial(r.gitlab)])} if {
	applies
	count(allowing) == 0
	r := routes[0]
}
