fn main() {
    hafrm_app::start();
}
