-- The CodePay store the order was placed under, so re-reads (polls, refunds) use the same one.
ALTER TABLE payments ADD COLUMN codepay_store_no TEXT;
