//! Admin API over deliveries and events (DESIGN §5).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::Admin;
use super::error::ApiError;
use crate::domain::delivery::{JobFilter, JobState};
use crate::domain::event::EventId;
use crate::domain::route::RouteName;
use crate::state::AppState;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/deliveries", web::get().to(list_deliveries))
        .route("/api/deliveries/{id}/retry", web::post().to(retry_delivery))
        .route("/api/events/{id}", web::get().to(show_event))
        .route("/api/events/{id}/replay", web::post().to(replay_event));
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    route: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
}

impl TryFrom<ListQuery> for JobFilter {
    type Error = ApiError;

    fn try_from(query: ListQuery) -> Result<Self, ApiError> {
        let state = query
            .state
            .map(|s| {
                JobState::parse(&s).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "state `{s}` is not one of pending, delivered, failed"
                    ))
                })
            })
            .transpose()?;
        let route = query
            .route
            .map(|r| RouteName::parse(&r).map_err(ApiError::BadRequest))
            .transpose()?;
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(ApiError::BadRequest(format!(
                "limit must be 1 to {MAX_PAGE}"
            )));
        }
        Ok(JobFilter {
            state,
            route,
            before_id: query.before,
            limit,
        })
    }
}

async fn list_deliveries(
    _admin: Admin,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let filter = JobFilter::try_from(query.into_inner())?;
    let jobs = state.deliveries.list(filter).await?;
    Ok(HttpResponse::Ok().json(json!({ "deliveries": jobs })))
}

async fn retry_delivery(
    _admin: Admin,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let job = state.deliveries.retry(path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "delivery": job })))
}

fn event_id(text: &str) -> Result<EventId, ApiError> {
    EventId::parse(text).map_err(ApiError::BadRequest)
}

async fn show_event(
    _admin: Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let event = state.deliveries.event(&event_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(json!({ "event": event })))
}

#[derive(Deserialize)]
struct ReplayQuery {
    route: Option<String>,
}

async fn replay_event(
    _admin: Admin,
    path: web::Path<String>,
    query: web::Query<ReplayQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = event_id(&path)?;
    let only = query
        .route
        .as_deref()
        .map(|r| RouteName::parse(r).map_err(ApiError::BadRequest))
        .transpose()?;
    let jobs = state.deliveries.replay(&id, only.as_ref()).await?;
    Ok(HttpResponse::Accepted().json(json!({ "event_id": id.as_str(), "deliveries": jobs })))
}
