//! Configuration fails fast, with messages that say what to fix.

use pushhand::config::from_args;

fn check(args: &[&str]) -> Result<(), String> {
    let mut all = vec!["pushhand"];
    all.extend_from_slice(args);
    let config = from_args(all).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())
}

#[test]
fn defaults_are_the_spec_numbers() {
    let config = from_args(["pushhand"]).expect("defaults parse");
    let p = &config.policy;
    assert_eq!(p.max_brands_per_category, 8);
    assert_eq!(p.min_criterion_score, 3);
    assert_eq!(p.partner_binding_days, 365);
    assert_eq!(p.commission_levels, 2);
    assert_eq!(p.membership_reward.to_string(), "60.00");
    assert_eq!(p.auto_complete_days, 10);
    assert_eq!(p.return_window_days, 7);
    assert_eq!(p.min_withdrawal.to_string(), "10.00");
    assert_eq!(p.payment_timeout_minutes, 30);
}

#[test]
fn more_than_three_commission_levels_is_refused() {
    let err = check(&["--commission-levels", "4"]).expect_err("refused");
    assert!(err.contains("commission-levels"), "{err}");
    assert!(check(&["--commission-levels", "3"]).is_ok());
}

#[test]
fn production_requires_a_strong_jwt_secret() {
    let err = check(&["--env", "production"]).expect_err("refused");
    assert!(err.contains("JWT_SECRET"), "{err}");
    let err = check(&["--env", "production", "--jwt-secret", "short"]).expect_err("refused");
    assert!(err.contains("32"), "{err}");
    assert!(check(&["--env", "production", "--jwt-secret", &"x".repeat(32)]).is_ok());
}

#[test]
fn bad_values_name_their_setting() {
    let err = check(&["--database-url", "mysql://x"]).expect_err("refused");
    assert!(err.contains("DATABASE_URL"), "{err}");
    let err = check(&["--membership-reward", "1.234"]).expect_err("refused");
    assert!(err.contains("PUSHHAND_MEMBERSHIP_REWARD"), "{err}");
    let err = check(&["--withdrawal-fee-rate", "1.5"]).expect_err("refused");
    assert!(err.contains("PUSHHAND_WITHDRAWAL_FEE_RATE"), "{err}");
}
