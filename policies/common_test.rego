package gateward.common_test

import rego.v1

import data.gateward.common

route(name, prefix, methods) := {"name": name, "path_prefix": prefix, "methods": methods, "issuer": "github", "github_actions": {}}

req(method, path) := {
	"token": {"issuer": "github", "claims": {"aud": "https://github.com/acme-corp", "iat": 1790000000}},
	"request": {"method": method, "path": path, "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

names(routes) := [r.name | some r in routes]

test_clean_paths if {
	common.clean_path("/")
	common.clean_path("/deploy")
	common.clean_path("/deploy/payments/")
	common.clean_path("/files/a.b..c")
	not common.clean_path("")
	not common.clean_path("deploy")
	not common.clean_path("//deploy")
	not common.clean_path("/deploy//payments")
	not common.clean_path("/deploy/../admin")
	not common.clean_path("/deploy/./payments")
	not common.clean_path("/deploy/..")
	not common.clean_path("/deploy/%2e%2E/admin")
	not common.clean_path("/deploy/.%2e/admin")
	not common.clean_path("/deploy%2Fadmin")
	not common.clean_path("/deploy%5cadmin")
	not common.clean_path("/deploy\\admin")
	not common.clean_path(7)
	not common.clean_path("/deploy/%2E")
	not common.clean_path("/deploy%00")
	not common.clean_path("/a/./")
	common.clean_path("/a/.well-known/x")
	common.clean_path("/a/...")
}

# What the gate refuses as `path_ambiguous` is not clean here either (policy-engine/tests/request.rs).
test_paths_the_upstream_may_resolve_elsewhere_are_not_clean if {
	not common.clean_path("/status/..;/deploy/payments")
	not common.clean_path("/status/%2e%2e;/admin")
	not common.clean_path("/status/.;x=1/admin")
	not common.clean_path("/deploy/..;a=b/actuator/env")
	not common.clean_path("/deploy/payments;x")
	not common.clean_path("/deploy;x/payments")
	not common.clean_path("/files/a%2ejson")
	not common.clean_path("/a%0ab")
	not common.clean_path("/a%7Fb")
	not common.clean_path("/a\tb")
	not common.clean_path("/a\u007fb")
	not common.path_under("/status/..;/deploy/payments", "/status")
}

test_digits if {
	common.digits("0")
	common.digits("9919")
	not common.digits("")
	not common.digits("12a")
	not common.digits(" 12")
	not common.digits("-1")
	not common.digits("١٢")
	not common.digits(12)
}

test_path_under_whole_segments if {
	common.path_under("/ns/ci", "/ns/ci")
	common.path_under("/ns/ci/", "/ns/ci")
	common.path_under("/ns/ci/x", "/ns/ci")
	common.path_under("/anything", "/")
	not common.path_under("/ns/ci-evil", "/ns/ci")
	not common.path_under("/ns/cix/y", "/ns/ci")
	not common.path_under("/ns", "/ns/ci")
	not common.path_under("/ns/ci/../admin", "/ns/ci")
}

test_most_specific_route_wins if {
	routes := [route("broad", "/deploy", ["POST"]), route("narrow", "/deploy/payments", ["POST"]), route("other", "/status", ["GET"])]
	names(common.selected_routes) == ["narrow"] with input as req("POST", "/deploy/payments/eu") with data.routes as routes
	names(common.selected_routes) == ["broad"] with input as req("POST", "/deploy/search") with data.routes as routes
	names(common.selected_routes) == ["broad"] with input as req("POST", "/deploy/payments-evil") with data.routes as routes
	names(common.selected_routes) == [] with input as req("GET", "/deploy/payments") with data.routes as routes
}

test_methods if {
	routes := [route("any", "/x", ["*"]), route("get", "/y", ["GET"]), route("none", "/z", [])]
	names(common.matching_routes) == ["any"] with input as req("DELETE", "/x") with data.routes as routes
	names(common.matching_routes) == [] with input as req("get", "/y") with data.routes as routes
	names(common.matching_routes) == [] with input as req("GET", "/z") with data.routes as routes
}

# A method that is not an upper-case token matches no route, not even "*" (the gate refuses it
# as `method_invalid`; Django and Flask would serve `post` as POST).
test_methods_not_upper_case_tokens_match_no_route if {
	routes := [route("broad", "/deploy", ["*"]), route("narrow", "/deploy/payments", ["POST"])]
	names(common.selected_routes) == ["narrow"] with input as req("POST", "/deploy/payments") with data.routes as routes
	names(common.selected_routes) == [] with input as req("post", "/deploy/payments") with data.routes as routes
	names(common.selected_routes) == [] with input as req("Post", "/deploy/payments") with data.routes as routes
	names(common.selected_routes) == [] with input as req("GE T", "/deploy/payments") with data.routes as routes
	names(common.selected_routes) == [] with input as req("", "/deploy/payments") with data.routes as routes
	names(common.selected_routes) == [] with input as req(7, "/deploy/payments") with data.routes as routes
	names(common.selected_routes) == ["broad"] with input as req("M-SEARCH", "/deploy/x") with data.routes as routes
	common.unrouted_reason == "request method \"post\" is not an upper-case token" with input as req("post", "/deploy/payments") with data.routes as routes
	common.valid_method("PATCH")
	not common.valid_method("patch")
}

test_routes_for_issuer_and_provider if {
	gl := {"name": "gl", "path_prefix": "/x", "methods": ["GET"], "issuer": "gitlab", "gitlab": {}}
	routes := [route("gh", "/x", ["GET"]), gl]
	names(common.routes_for("github_actions")) == ["gh"] with input as req("GET", "/x") with data.routes as routes
	names(common.routes_for("gitlab")) == [] with input as req("GET", "/x") with data.routes as routes
}

test_unrouted_reasons if {
	routes := [route("deploy", "/deploy", ["POST"]), {"name": "bad", "path_prefix": "/x"}, 42]
	common.unrouted_reason == "no route for GET /deploy (misconfigured routes ignored: bad, routes[2])" with input as req("GET", "/deploy") with data.routes as routes
	common.unrouted_reason == "request path \"/a/../deploy\" is not in canonical form" with input as req("POST", "/a/../deploy") with data.routes as routes
	common.unrouted_reason == "no route for POST /deploy" with input as req("POST", "/deploy") with data.routes as "not a list"
}

test_audiences if {
	common.audiences == {"a"} with input as {"token": {"claims": {"aud": "a"}}}
	common.audiences == {"a", "b"} with input as {"token": {"claims": {"aud": ["a", "b", 3]}}}
	common.single_audience with input as {"token": {"claims": {"aud": ["a"]}}}
	not common.single_audience with input as {"token": {"claims": {"aud": ["a", "b"]}}}
	not common.single_audience with input as {"token": {"claims": {}}}
}

test_issued_within if {
	common.issued_within(300) with input as req("GET", "/")
	not common.issued_within(60) with input as req("GET", "/")
	not common.issued_within(300) with input as object.remove(req("GET", "/"), ["now"])
	not common.issued_within(300) with input as object.union(req("GET", "/"), {"now": 1789990000})
}

test_value_helpers if {
	common.digits("91234567")
	not common.digits(91234567)
	not common.digits("")
	not common.digits("12a")
	common.uuid_string("c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e")
	not common.uuid_string("C9035EB6-6EB2-4C85-8A81-D9ED6A1D1D1E")
	common.one_of("a", ["b", "a"])
	not common.one_of("a", [])
	not common.one_of(null, [null])
	common.glob_one_of("release/1.2", ["release/*"])
	not common.glob_one_of("release/1/2", ["release/*"])
	common.glob_one_of("release/1/2", ["release/**"])
	common.anchored_match("acme/.*", "acme/x")
	not common.anchored_match("acme/.*", "evil/acme/x")
	not common.anchored_match("a|b", "ab")
	not common.constrains({"branches": []}, "branches")
	common.constrains({"branches": ["main"]}, "branches")
}
