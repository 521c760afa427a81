//! The OpenAPI 3.1 document of the SDK, generated from the handlers'
//! `#[utoipa::path]` annotations and the `twofold_proto` types, and
//! committed as `docs/openapi.json`. A schemathesis run against the served
//! document (`crates/twofold/tests/openapi_conformance.rs`) keeps it true.
//!
//! The handlers declare what they answer themselves; `CommonAnswers` adds
//! what the extractors in front of every handler answer (credentials,
//! throttling, malformed input, oversized bodies), so no operation can
//! leave those out.

use axum::http::header;
use twofold_core::settings::KEYS;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::OpenApi;

use super::{authenticate, import, settings, tokens, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Twofold Web Service SDK",
        description = "Validate passcodes and manage users of a Twofold MFA server. Authenticate with HTTP Basic: a service account (`twofold service-account create NAME --role validate|admin`) or a directory account in the administrators' group (setting `sdk.admin_group`). A call outside the account's role, permissions or scope answers 403 `forbidden`. An authenticated caller acting for a person (a RADIUS or IdP front-end) may send that person's IP address in the `X-Twofold-Client-Ip` header: it is then audited, throttled and matched against trusted IPs instead of the caller's own address. Rate-limited answers (429) carry `Retry-After`. Request bodies are JSON objects of at most 64 KiB. Where the schemas cannot say a rule (a username's script, the PIN rules in the settings, a real phone number), the description does, and breaking it answers 422.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        super::self_test, super::validate, super::primary, super::audit,
        authenticate::start, authenticate::status, authenticate::answer,
        users::list, users::create, users::show, users::update, users::delete,
        users::enable, users::disable, users::unblock, users::password, users::pin,
        users::method, users::language, users::bypass, import::import,
        tokens::list, tokens::add, tokens::delete, tokens::resync,
        tokens::questions, tokens::add_question, tokens::delete_question,
        settings::settings, settings::set_setting, settings::reset_setting,
        crate::mobile::activate, crate::mobile::requests, crate::mobile::answer,
        crate::mobile::deactivate,
    ),
    modifiers(&BasicAuth, &Parameters, &CommonAnswers),
    tags(
        (name = "validate", description = "One-call passcode checks for applications"),
        (name = "authenticate", description = "Authenticating a user with their method in steps, for applications that collect the answer in a later request: start a challenge, follow it, answer it. The challenge id is a bearer secret of the account that started it."),
        (name = "users", description = "Users and their settings"),
        (name = "tokens", description = "OATH tokens"),
        (name = "questions", description = "Security questions"),
        (name = "audit", description = "The audit log"),
        (name = "settings", description = "Runtime settings, shared by every node"),
        (name = "mobile", description = "The Mobile App Web Service: what an authenticator app calls, each request signed with the device's Ed25519 key (headers X-Twofold-Device, -Timestamp, -Nonce, -Signature; docs/mobile-protocol.md). No HTTP Basic credentials."),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document, pretty-printed as committed in `docs/openapi.json`.
pub fn openapi_document() -> String {
    // utoipa 5's `Link` has no camelCase rename and writes `operation_id`,
    // a key OpenAPI does not know; no other object is spelled that way.
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_default()
        .replace("\"operation_id\": ", "\"operationId\": ")
}

struct BasicAuth;

impl utoipa::Modify for BasicAuth {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "basic",
            Vec::<String>::new(),
        )]);
    }
}

fn operations(doc: &mut Document) -> impl Iterator<Item = (&String, &mut Operation)> {
    doc.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
        .map(move |op| (path, op))
    })
}

/// Path parameters that mean the same everywhere get one schema: the rules
/// of a username, a challenge id, the settings keys there are.
struct Parameters;

impl utoipa::Modify for Parameters {
    fn modify(&self, doc: &mut Document) {
        for (path, op) in operations(doc) {
            for p in op.parameters.iter_mut().flatten() {
                if !matches!(p.parameter_in, ParameterIn::Path) {
                    continue;
                }
                let schema: Option<Object> = match p.name.as_str() {
                    "username" => Some(twofold_proto::rules::username()),
                    "id" if path.starts_with("/sdk/v1/authenticate/") => Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some("^[0-9a-f]{32}$"))
                            .build(),
                    ),
                    "key" => Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(KEYS.iter().map(|k| k.key)))
                            .build(),
                    ),
                    _ => None,
                };
                if let Some(schema) = schema {
                    p.schema = Some(schema.into());
                }
            }
        }
    }
}

/// What the extractors answer for every handler behind them: `Caller`
/// (credentials: 401, 403, 429 when throttled, 503 when the database is
/// away), `ApiJson` (413, and 422 for a body that is not the JSON object
/// asked for) and the path and query parsers (422); and 404 for a path
/// that names nothing.
struct CommonAnswers;

const ERROR_BODY: &str = "ErrorBody";

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ERROR_BODY)))
            .build(),
    )
}

fn header_schema(ty: Type) -> Object {
    ObjectBuilder::new().schema_type(ty).build()
}

impl utoipa::Modify for CommonAnswers {
    fn modify(&self, doc: &mut Document) {
        let shared: [(&str, &str, Response); 7] = [
            (
                "401",
                "Unauthorized",
                error_response("No valid credentials (`unauthorized`).")
                    .header(
                        header::WWW_AUTHENTICATE.as_str(),
                        HeaderBuilder::new()
                            .schema(header_schema(Type::String))
                            .description(Some("`Basic realm=\"twofold-sdk\", charset=\"UTF-8\"`"))
                            .build(),
                    )
                    .build(),
            ),
            (
                "403",
                "Forbidden",
                error_response(
                    "Outside the account's role, permissions or scope (`forbidden`, audited).",
                )
                .build(),
            ),
            (
                "404",
                "NotFound",
                error_response("Nothing by that name (`not_found`).").build(),
            ),
            (
                "413",
                "TooLarge",
                error_response("The body is over 64 KiB (`too_large`).").build(),
            ),
            (
                "422",
                "Invalid",
                error_response(
                    "A malformed body, path or query, or a value against its rule \
                     (`invalid_input`, with the `field` at fault).",
                )
                .build(),
            ),
            (
                "429",
                "RateLimited",
                error_response(
                    "Too many failures from this address, or for this user (`rate_limited`).",
                )
                .header(
                    header::RETRY_AFTER.as_str(),
                    HeaderBuilder::new()
                        .schema(header_schema(Type::Integer))
                        .description(Some("Seconds to wait."))
                        .build(),
                )
                .build(),
            ),
            (
                "503",
                "Unavailable",
                error_response("The database cannot be reached (`unavailable`).").build(),
            ),
        ];
        let components = doc.components.get_or_insert_with(Default::default);
        for (_, name, response) in &shared {
            components
                .responses
                .insert((*name).to_string(), RefOr::T(response.clone()));
        }
        for (_, op) in operations(doc) {
            let params = op.parameters.as_deref().unwrap_or_default();
            let has_path = params
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Path));
            let takes_input = op.request_body.is_some() || !params.is_empty();
            for (status, name, _) in &shared {
                let applies = match *status {
                    "404" => has_path,
                    "413" => op.request_body.is_some(),
                    "422" => takes_input,
                    _ => true,
                };
                if applies {
                    op.responses
                        .responses
                        .entry((*status).to_string())
                        .or_insert_with(|| {
                            RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                        });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn document() -> Value {
        serde_json::from_str(&super::openapi_document()).unwrap()
    }

    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .map(move |(method, op)| (path.clone(), method.clone(), op))
            })
            .collect()
    }

    #[test]
    fn operation_ids_are_unique_and_links_name_them() {
        let doc = document();
        let ops = operations(&doc);
        let ids: BTreeSet<&str> = ops
            .iter()
            .map(|(_, _, op)| op["operationId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), ops.len(), "operationIds repeat");
        let mut links = 0;
        for (path, method, op) in &ops {
            for response in op["responses"].as_object().unwrap().values() {
                for link in response["links"].as_object().into_iter().flatten() {
                    let target = link.1["operationId"].as_str().unwrap_or_default();
                    assert!(ids.contains(target), "{method} {path}: link to {target:?}");
                    links += 1;
                }
            }
        }
        assert!(links > 0);
        assert!(!super::openapi_document().contains("operation_id"));
    }

    #[test]
    fn every_operation_says_what_its_extractors_answer() {
        let doc = document();
        for (path, method, op) in operations(&doc) {
            let responses = op["responses"].as_object().unwrap();
            for status in ["401", "403", "429", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            if op.get("requestBody").is_some() {
                for status in ["413", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                assert!(responses.contains_key("422"), "{method} {path}: no 422");
                // Only path parameters (and the Mobile App Web Service's
                // signature headers) are required; the listings' filters
                // and pages are optional query parameters.
                assert_eq!(
                    p["required"] == true,
                    p["in"] == "path" || p["in"] == "header",
                    "{method} {path}: {p}"
                );
            }
        }
    }
}
