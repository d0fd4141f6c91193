//! A PBX simulator implementing the reference contract of the hosting
//! controller, keeping its PBXs in memory and, when given a file, in that
//! file too, so a restart neither forgets them nor hands out their ids and
//! host names again. `switchboard simulate-controller` runs it on its own;
//! development and `--demo` run it in-process (kept in the data folder);
//! tests use it to play a controller that fails, hangs, answers garbage, or
//! does the work and loses the answer.
//!
//! Faults are armed with `POST /_simulator/faults`, for example
//! `{"fail": 3}` (the next three commands answer 503), `{"hang": 1}`,
//! `{"garbage": 2}`, `{"lose_answer": 1}` (do the work, then never answer).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::web::{Data, Json, Path};
use poem::{get, handler, post, put, EndpointExt, IntoResponse, Response, Route};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Created, LiveCall, PbxStatus};

/// One simulated PBX.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimulatedPbx {
    pub id: String,
    pub request_id: String,
    pub hostname: String,
    pub plan: String,
    pub extensions: i32,
    pub gui_password: String,
    pub powered: bool,
    pub calling: bool,
    pub created_at: DateTime<Utc>,
    /// The phone numbers routed to it, E.164.
    #[serde(default)]
    pub numbers: Vec<String>,
}

/// Faults armed for the next commands, each counted down as it fires.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct Faults {
    pub fail: u32,
    pub hang: u32,
    pub garbage: u32,
    pub lose_answer: u32,
}

#[derive(Default, Serialize, Deserialize)]
struct State {
    pbxes: HashMap<String, SimulatedPbx>,
    by_request: HashMap<String, String>,
    #[serde(skip)]
    faults: Faults,
    next: u64,
}

/// The simulator's shared state.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
    /// How long a "hang" lasts; a client's timeout should be far shorter.
    hang: Duration,
    /// Where the PBXs are kept across restarts, if anywhere.
    file: Option<Arc<PathBuf>>,
}

impl Default for Simulator {
    fn default() -> Simulator {
        Simulator::new()
    }
}

impl Simulator {
    pub fn new() -> Simulator {
        Simulator {
            state: Arc::default(),
            hang: Duration::from_secs(3600),
            file: None,
        }
    }

    /// A simulator whose PBXs are kept in `file`: read from it now (when it
    /// exists), written back after every command.
    pub fn kept_in(file: &std::path::Path) -> anyhow::Result<Simulator> {
        use anyhow::Context;
        let state = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not the simulator's state", file.display()))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(error) => return Err(error).with_context(|| format!("reading {}", file.display())),
        };
        Ok(Simulator {
            state: Arc::new(Mutex::new(state)),
            file: Some(Arc::new(file.to_path_buf())),
            ..Simulator::new()
        })
    }

    /// Writes the PBXs to the simulator's file (a new file renamed over the
    /// old, so a crash leaves one or the other whole).
    fn keep(&self, state: &State) {
        let Some(file) = &self.file else {
            return;
        };
        let partial = file.with_extension("partial");
        let written = serde_json::to_vec(state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&partial, bytes))
            .and_then(|()| std::fs::rename(&partial, file.as_path()));
        if let Err(error) = written {
            tracing::warn!(file = %file.display(), %error, "the simulator could not keep its PBXs");
        }
    }

    /// The same, with hangs of `hang` instead of an hour.
    pub fn with_hang(mut self, hang: Duration) -> Simulator {
        self.hang = hang;
        self
    }

    /// Every PBX made so far.
    pub fn pbxes(&self) -> Vec<SimulatedPbx> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<SimulatedPbx> = state.pbxes.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Arms faults for the next commands.
    pub fn arm(&self, faults: Faults) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).faults = faults;
    }

    /// The routes of the reference contract, plus `/_simulator/…`.
    pub fn routes(&self) -> impl poem::Endpoint {
        Route::new()
            .at("/pbxes", post(create))
            .at("/pbxes/:id", get(status))
            .at("/pbxes/:id/calling/:action", post(calling))
            .at("/pbxes/:id/power/:action", post(power))
            .at("/pbxes/:id/gui-password", put(gui_password))
            .at("/pbxes/:id/calls", get(calls))
            .at("/pbxes/:id/numbers", post(assign_number))
            .at("/pbxes/:id/numbers/:number", poem::delete(unassign_number))
            .at("/_simulator/faults", post(arm))
            .at("/_simulator/pbxes", get(list))
            .data(self.clone())
    }

    /// What the next command should suffer, counting it down.
    fn take_fault(&self) -> Option<Fault> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let faults = &mut state.faults;
        let (counter, fault) = if faults.fail > 0 {
            (&mut faults.fail, Fault::Fail)
        } else if faults.hang > 0 {
            (&mut faults.hang, Fault::Hang)
        } else if faults.garbage > 0 {
            (&mut faults.garbage, Fault::Garbage)
        } else if faults.lose_answer > 0 {
            (&mut faults.lose_answer, Fault::LoseAnswer)
        } else {
            return None;
        };
        *counter -= 1;
        Some(fault)
    }

    /// Runs a command under whatever fault is armed.
    async fn answer(&self, work: impl FnOnce(&mut State) -> Response) -> Response {
        match self.take_fault() {
            Some(Fault::Fail) => {
                (StatusCode::SERVICE_UNAVAILABLE, "simulated failure").into_response()
            }
            Some(Fault::Hang) => {
                tokio::time::sleep(self.hang).await;
                StatusCode::GATEWAY_TIMEOUT.into_response()
            }
            Some(Fault::Garbage) => "<html><body>502 Bad Gateway</body></html>".into_response(),
            Some(Fault::LoseAnswer) => {
                let _ = self.work(work);
                tokio::time::sleep(self.hang).await;
                StatusCode::GATEWAY_TIMEOUT.into_response()
            }
            None => self.work(work),
        }
    }

    /// Does a command's work on the state, and keeps the result.
    fn work(&self, work: impl FnOnce(&mut State) -> Response) -> Response {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let response = work(&mut state);
        self.keep(&state);
        response
    }
}

enum Fault {
    Fail,
    Hang,
    Garbage,
    LoseAnswer,
}

#[derive(Deserialize)]
struct CreateBody {
    request_id: String,
    plan: String,
    #[serde(default)]
    extensions: i32,
    gui_password: String,
}

#[handler]
async fn create(Data(sim): Data<&Simulator>, Json(body): Json<CreateBody>) -> Response {
    sim.answer(|state| create_in(state, &body)).await
}

/// Makes a PBX, or finds the one made for the same request id.
fn create_in(state: &mut State, body: &CreateBody) -> Response {
    if body.request_id.is_empty() || body.gui_password.len() < 8 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "request_id and a gui_password of 8+ characters are needed",
        )
            .into_response();
    }
    let id = match state.by_request.get(&body.request_id) {
        Some(id) => id.clone(),
        None => {
            state.next += 1;
            let id = format!("sim-{:04}", state.next);
            let pbx = SimulatedPbx {
                hostname: format!("{id}.pbx.switchboard.test"),
                id: id.clone(),
                request_id: body.request_id.clone(),
                plan: body.plan.clone(),
                extensions: body.extensions,
                gui_password: body.gui_password.clone(),
                powered: true,
                calling: true,
                created_at: Utc::now(),
                numbers: Vec::new(),
            };
            state.pbxes.insert(id.clone(), pbx);
            state.by_request.insert(body.request_id.clone(), id.clone());
            id
        }
    };
    let pbx = &state.pbxes[&id];
    Json(Created {
        id: pbx.id.clone(),
        hostname: pbx.hostname.clone(),
        // The trunk its simulated traffic goes through.
        trunks: vec!["PJSIP/trunk-voip".into()],
    })
    .with_status(StatusCode::CREATED)
    .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such PBX").into_response()
}

#[handler]
async fn status(Data(sim): Data<&Simulator>, Path(id): Path<String>) -> Response {
    sim.answer(|state| match state.pbxes.get(&id) {
        None => not_found(),
        Some(pbx) => Json(PbxStatus {
            state: if pbx.powered { "up" } else { "down" }.into(),
            version: "Asterisk 16.30.0 (simulated)".into(),
            uptime_seconds: if pbx.powered {
                (Utc::now() - pbx.created_at).num_seconds().max(0) as u64
            } else {
                0
            },
            calling: if pbx.calling { "enabled" } else { "suspended" }.into(),
        })
        .into_response(),
    })
    .await
}

#[handler]
async fn calling(
    Data(sim): Data<&Simulator>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    sim.answer(|state| match (state.pbxes.get_mut(&id), action.as_str()) {
        (None, _) => not_found(),
        (Some(pbx), "suspend") => {
            pbx.calling = false;
            StatusCode::NO_CONTENT.into_response()
        }
        (Some(pbx), "resume") => {
            pbx.calling = true;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    })
    .await
}

#[handler]
async fn power(
    Data(sim): Data<&Simulator>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    sim.answer(|state| match (state.pbxes.get_mut(&id), action.as_str()) {
        (None, _) => not_found(),
        (Some(pbx), "off") => {
            pbx.powered = false;
            StatusCode::NO_CONTENT.into_response()
        }
        (Some(pbx), "on") => {
            pbx.powered = true;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    })
    .await
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

#[handler]
async fn gui_password(
    Data(sim): Data<&Simulator>,
    Path(id): Path<String>,
    Json(body): Json<PasswordBody>,
) -> Response {
    sim.answer(|state| match state.pbxes.get_mut(&id) {
        None => not_found(),
        Some(pbx) => {
            pbx.gui_password = body.password.clone();
            StatusCode::NO_CONTENT.into_response()
        }
    })
    .await
}

#[handler]
async fn calls(Data(sim): Data<&Simulator>, Path(id): Path<String>) -> Response {
    sim.answer(|state| match state.pbxes.get(&id) {
        None => not_found(),
        Some(pbx) if !pbx.powered => Json(serde_json::json!({ "calls": [] })).into_response(),
        Some(pbx) => {
            let mut rng = rand::thread_rng();
            let count = rng.gen_range(0..=pbx.extensions.clamp(1, 4));
            let calls: Vec<LiveCall> = (0..count)
                .map(|n| {
                    let extension = 200 + rng.gen_range(0..pbx.extensions.max(1));
                    let outbound = rng.gen_bool(0.6);
                    let number = format!("+1555{:07}", rng.gen_range(0..10_000_000));
                    LiveCall {
                        channel: format!("PJSIP/{extension}-{:08x}", rng.gen::<u32>()),
                        from: if outbound {
                            extension.to_string()
                        } else {
                            number.clone()
                        },
                        to: if outbound {
                            number
                        } else {
                            extension.to_string()
                        },
                        direction: if outbound { "outbound" } else { "inbound" }.into(),
                        started_at: (Utc::now() - chrono::Duration::seconds(30 * (n as i64 + 1)))
                            .to_rfc3339(),
                    }
                })
                .collect();
            Json(serde_json::json!({ "calls": calls })).into_response()
        }
    })
    .await
}

#[derive(Deserialize)]
struct NumberBody {
    number: String,
}

/// Routes a number to a PBX; assigning it again is harmless.
#[handler]
async fn assign_number(
    Data(sim): Data<&Simulator>,
    Path(id): Path<String>,
    Json(body): Json<NumberBody>,
) -> Response {
    sim.answer(|state| {
        let taken = state
            .pbxes
            .values()
            .any(|pbx| pbx.id != id && pbx.numbers.contains(&body.number));
        match state.pbxes.get_mut(&id) {
            None => not_found(),
            Some(_) if taken => {
                (StatusCode::CONFLICT, "the number is on another PBX").into_response()
            }
            Some(pbx) => {
                if !pbx.numbers.contains(&body.number) {
                    pbx.numbers.push(body.number.clone());
                }
                StatusCode::NO_CONTENT.into_response()
            }
        }
    })
    .await
}

/// Takes a number off a PBX; one that is not there is gone already.
#[handler]
async fn unassign_number(
    Data(sim): Data<&Simulator>,
    Path((id, number)): Path<(String, String)>,
) -> Response {
    sim.answer(|state| match state.pbxes.get_mut(&id) {
        None => not_found(),
        Some(pbx) => {
            pbx.numbers.retain(|n| *n != number);
            StatusCode::NO_CONTENT.into_response()
        }
    })
    .await
}

#[handler]
fn arm(Data(sim): Data<&Simulator>, Json(faults): Json<Faults>) -> Response {
    sim.arm(faults);
    StatusCode::NO_CONTENT.into_response()
}

#[handler]
fn list(Data(sim): Data<&Simulator>) -> Response {
    Json(sim.pbxes()).into_response()
}

/// Serves the simulator until the process ends.
pub async fn serve(
    acceptor: impl poem::listener::Acceptor + 'static,
    simulator: Simulator,
) -> std::io::Result<()> {
    poem::Server::new_with_acceptor(acceptor)
        .run(simulator.routes())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn create(sim: &Simulator, request_id: &str) -> Created {
        let body = CreateBody {
            request_id: request_id.into(),
            plan: "office".into(),
            extensions: 5,
            gui_password: "a-password-123".into(),
        };
        let response = sim
            .answer(|state| super::create_in(state, &body))
            .await
            .into_body()
            .into_vec()
            .await
            .expect("a body");
        serde_json::from_slice(&response).expect("a PBX")
    }

    #[tokio::test]
    async fn a_restarted_simulator_remembers_its_pbxs_and_never_reuses_an_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("simulator.json");
        let first = Simulator::kept_in(&file).expect("a simulator");
        let made = create(&first, "pbx-1").await;
        drop(first);
        let restarted = Simulator::kept_in(&file).expect("read back");
        assert_eq!(
            restarted.pbxes().iter().map(|p| &p.id).collect::<Vec<_>>(),
            [&made.id],
            "the PBX made before the restart is still there"
        );
        assert_eq!(create(&restarted, "pbx-1").await, made, "the same request");
        let next = create(&restarted, "pbx-2").await;
        assert_ne!(next.id, made.id);
        assert_ne!(next.hostname, made.hostname);
    }
}
