//! Reading the payment channels' keys: the settings are `config::PaymentSettings` (checked
//! there for presence); here the key files are read and parsed, each error naming its
//! variable.

use std::path::Path;

use anyhow::Context;

use super::alipay::AlipayConfig;
use super::keys::{PrivateKey, PublicKey};
use super::wechat::WechatConfig;
use crate::config::{PaymentSettings, required, text};

fn read(path: &Path, var: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {var} ({})", path.display()))
}

impl PaymentSettings {
    /// WeChat Pay's settings with its keys read (after [`PaymentSettings::check`]).
    pub fn wechat_config(&self) -> anyhow::Result<WechatConfig> {
        let c = "PUSHHAND_WECHATPAY_ENABLED";
        let key_file = required(
            self.wechat_merchant_key_file.as_ref(),
            "PUSHHAND_WECHATPAY_MERCHANT_KEY_FILE",
            c,
        )?;
        let platform_file = required(
            self.wechat_platform_key_file.as_ref(),
            "PUSHHAND_WECHATPAY_PLATFORM_KEY_FILE",
            c,
        )?;
        let api_v3_key = required(
            self.wechat_api_v3_key.as_ref(),
            "PUSHHAND_WECHATPAY_APIV3_KEY",
            c,
        )?;
        Ok(WechatConfig {
            base_url: required(
                text(&self.wechat_base_url),
                "PUSHHAND_WECHATPAY_BASE_URL",
                c,
            )?
            .to_owned(),
            mch_id: required(text(&self.wechat_mch_id), "PUSHHAND_WECHATPAY_MCH_ID", c)?.to_owned(),
            app_id: required(text(&self.wechat_app_id), "PUSHHAND_WECHATPAY_APP_ID", c)?.to_owned(),
            merchant_serial: required(
                text(&self.wechat_merchant_serial),
                "PUSHHAND_WECHATPAY_MERCHANT_SERIAL",
                c,
            )?
            .to_owned(),
            merchant_key: PrivateKey::parse(&read(
                key_file,
                "PUSHHAND_WECHATPAY_MERCHANT_KEY_FILE",
            )?)
            .context("PUSHHAND_WECHATPAY_MERCHANT_KEY_FILE")?,
            platform_key_id: required(
                text(&self.wechat_platform_key_id),
                "PUSHHAND_WECHATPAY_PLATFORM_KEY_ID",
                c,
            )?
            .to_owned(),
            platform_key: PublicKey::parse(&read(
                platform_file,
                "PUSHHAND_WECHATPAY_PLATFORM_KEY_FILE",
            )?)
            .context("PUSHHAND_WECHATPAY_PLATFORM_KEY_FILE")?,
            api_v3_key: super::wechat::api_v3_key(api_v3_key.expose())
                .context("PUSHHAND_WECHATPAY_APIV3_KEY")?,
            notify_url: self.notify_url("wechat", c)?,
        })
    }

    /// Alipay's settings with its keys read (after [`PaymentSettings::check`]).
    pub fn alipay_config(&self) -> anyhow::Result<AlipayConfig> {
        let c = "PUSHHAND_ALIPAY_ENABLED";
        let app_key_file = required(
            self.alipay_app_key_file.as_ref(),
            "PUSHHAND_ALIPAY_APP_KEY_FILE",
            c,
        )?;
        let public_file = required(
            self.alipay_public_key_file.as_ref(),
            "PUSHHAND_ALIPAY_PUBLIC_KEY_FILE",
            c,
        )?;
        Ok(AlipayConfig {
            app_id: required(text(&self.alipay_app_id), "PUSHHAND_ALIPAY_APP_ID", c)?.to_owned(),
            app_key: PrivateKey::parse(&read(app_key_file, "PUSHHAND_ALIPAY_APP_KEY_FILE")?)
                .context("PUSHHAND_ALIPAY_APP_KEY_FILE")?,
            alipay_key: PublicKey::parse(&read(public_file, "PUSHHAND_ALIPAY_PUBLIC_KEY_FILE")?)
                .context("PUSHHAND_ALIPAY_PUBLIC_KEY_FILE")?,
            gateway_url: self.alipay_gateway_url.trim().to_owned(),
            notify_url: self.notify_url("alipay", c)?,
            return_url: text(&self.alipay_return_url).map(str::to_owned),
            seller_id: text(&self.alipay_seller_id).map(str::to_owned),
            api_url: text(&self.alipay_api_url).map(str::to_owned),
        })
    }
}
