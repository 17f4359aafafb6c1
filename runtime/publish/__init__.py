"""Publishers: ZeroMQ PUB + command socket, Modbus TCP server and client; pure encoders beside them."""
