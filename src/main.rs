fn main() -> std::process::ExitCode {
    tweetlab::cli::main()
}
