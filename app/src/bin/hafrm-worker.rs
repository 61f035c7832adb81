//! The Web Worker that trains: the page starts it and talks to it by messages.
fn main() {
    hafrm_app::worker::start();
}
