//! The mount's storage: OpenBao's `pb.Storage` service, reached through the broker, as the
//! auth logic's [`Storage`].

use gateward_openbao_auth::{Storage, StorageError};
use tonic::transport::Channel;

use crate::proto::pb::storage_client::StorageClient;
use crate::proto::pb::{
    StorageDeleteArgs, StorageEntry, StorageGetArgs, StorageListArgs, StoragePutArgs,
};

/// Storage calls over a brokered connection to the host.
#[derive(Debug, Clone)]
pub struct BrokerStorage {
    client: StorageClient<Channel>,
}

impl BrokerStorage {
    /// Storage over `channel` (the connection `Setup` dialled).
    pub fn new(channel: Channel) -> BrokerStorage {
        BrokerStorage {
            // The host allows messages up to 2 GiB; so do we.
            client: StorageClient::new(channel)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        }
    }
}

fn transport(op: &str, key: &str, e: &tonic::Status) -> StorageError {
    StorageError(format!("{op} {key:?}: {}", e.message()))
}

fn reported(op: &str, key: &str, err: String) -> Result<(), StorageError> {
    if err.is_empty() {
        Ok(())
    } else {
        Err(StorageError(format!("{op} {key:?}: {err}")))
    }
}

impl Storage for BrokerStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let reply = self
            .client
            .clone()
            .get(StorageGetArgs { key: key.into() })
            .await
            .map_err(|e| transport("get", key, &e))?
            .into_inner();
        reported("get", key, reply.err)?;
        Ok(reply.entry.map(|e| e.value))
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        let entry = StorageEntry {
            key: key.into(),
            value: value.to_vec(),
            seal_wrap: false,
        };
        let reply = self
            .client
            .clone()
            .put(StoragePutArgs { entry: Some(entry) })
            .await
            .map_err(|e| transport("put", key, &e))?
            .into_inner();
        reported("put", key, reply.err)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let reply = self
            .client
            .clone()
            .delete(StorageDeleteArgs { key: key.into() })
            .await
            .map_err(|e| transport("delete", key, &e))?
            .into_inner();
        reported("delete", key, reply.err)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let reply = self
            .client
            .clone()
            .list(StorageListArgs {
                prefix: prefix.into(),
            })
            .await
            .map_err(|e| transport("list", prefix, &e))?
            .into_inner();
        reported("list", prefix, reply.err)?;
        Ok(reply.keys)
    }
}
