ALTER TABLE payments DROP COLUMN codepay_store_no;
