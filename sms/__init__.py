"""SMS: GSM-7/UCS-2 encoding and splitting (`sms.gsm`), the SMPP codec (`sms.pdu`) and the asyncio ESME
(`sms.smpp`) that submits parts, reads delivery receipts and hands incoming messages on."""
