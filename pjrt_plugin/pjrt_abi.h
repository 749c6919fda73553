// pyrt's declaration of the PJRT C API ABI, version 0.112 (what jaxlib 0.10.2 requires).
//
// Written for this project from the facts in shared/docs/pjrt-c-api-notes.md and the slot table
// in api_slots.inc. It declares only what pyrt reads or writes: the PJRT_Api table, the shared
// types, and the *_Args structs of the entry points we implement. Every *_Args struct begins with
// {size_t struct_size; PJRT_Extension_Base* extension_start;}; callers set struct_size to the
// size they were built with, and the entry points refuse structs shorter than the fields they
// touch (api_common.h).
#ifndef PYRT_PJRT_PLUGIN_PJRT_ABI_H_
#define PYRT_PJRT_PLUGIN_PJRT_ABI_H_

#include <stddef.h>
#include <stdint.h>

extern "C" {

#define PYRT_PJRT_API_MAJOR 0
#define PYRT_PJRT_API_MINOR 112
#define PYRT_PJRT_API_NUM_SLOTS 138

// Bytes up to and including `field`: the struct_size a caller must pass for us to read it.
#define PYRT_SIZE_THROUGH(type, field) (offsetof(type, field) + sizeof(((type*)0)->field))

// ------------------------------------------------------------------ common types

typedef struct PJRT_Extension_Base {
  size_t struct_size;
  int type;  // PJRT_Extension_Type
  struct PJRT_Extension_Base* next;
} PJRT_Extension_Base;

#define PJRT_ARGS_HEADER \
  size_t struct_size;    \
  PJRT_Extension_Base* extension_start

typedef struct PJRT_Api_Version {
  PJRT_ARGS_HEADER;
  int major_version;
  int minor_version;
} PJRT_Api_Version;

typedef enum {
  PJRT_Error_Code_OK = 0,
  PJRT_Error_Code_CANCELLED = 1,
  PJRT_Error_Code_UNKNOWN = 2,
  PJRT_Error_Code_INVALID_ARGUMENT = 3,
  PJRT_Error_Code_DEADLINE_EXCEEDED = 4,
  PJRT_Error_Code_NOT_FOUND = 5,
  PJRT_Error_Code_ALREADY_EXISTS = 6,
  PJRT_Error_Code_PERMISSION_DENIED = 7,
  PJRT_Error_Code_RESOURCE_EXHAUSTED = 8,
  PJRT_Error_Code_FAILED_PRECONDITION = 9,
  PJRT_Error_Code_ABORTED = 10,
  PJRT_Error_Code_OUT_OF_RANGE = 11,
  PJRT_Error_Code_UNIMPLEMENTED = 12,
  PJRT_Error_Code_INTERNAL = 13,
  PJRT_Error_Code_UNAVAILABLE = 14,
  PJRT_Error_Code_DATA_LOSS = 15,
  PJRT_Error_Code_UNAUTHENTICATED = 16,
} PJRT_Error_Code;

typedef enum {
  PJRT_NamedValue_kString = 0,
  PJRT_NamedValue_kInt64 = 1,
  PJRT_NamedValue_kInt64List = 2,
  PJRT_NamedValue_kFloat = 3,
  PJRT_NamedValue_kBool = 4,
} PJRT_NamedValue_Type;

typedef struct PJRT_NamedValue {
  PJRT_ARGS_HEADER;
  const char* name;
  size_t name_size;
  PJRT_NamedValue_Type type;
  union {
    const char* string_value;
    int64_t int64_value;
    const int64_t* int64_array_value;
    float float_value;
    bool bool_value;
  };
  size_t value_size;  // elements for lists and strings, 1 for scalars
} PJRT_NamedValue;

// Element types, numbered as XLA's PrimitiveType-derived PJRT enum.
typedef enum {
  PJRT_Buffer_Type_INVALID = 0,
  PJRT_Buffer_Type_PRED = 1,
  PJRT_Buffer_Type_S8 = 2,
  PJRT_Buffer_Type_S16 = 3,
  PJRT_Buffer_Type_S32 = 4,
  PJRT_Buffer_Type_S64 = 5,
  PJRT_Buffer_Type_U8 = 6,
  PJRT_Buffer_Type_U16 = 7,
  PJRT_Buffer_Type_U32 = 8,
  PJRT_Buffer_Type_U64 = 9,
  PJRT_Buffer_Type_F16 = 10,
  PJRT_Buffer_Type_F32 = 11,
  PJRT_Buffer_Type_F64 = 12,
  PJRT_Buffer_Type_BF16 = 13,
  PJRT_Buffer_Type_C64 = 14,
  PJRT_Buffer_Type_C128 = 15,
  PJRT_Buffer_Type_F8E5M2 = 16,
  PJRT_Buffer_Type_F8E4M3FN = 17,
  PJRT_Buffer_Type_F8E4M3B11FNUZ = 18,
  PJRT_Buffer_Type_F8E5M2FNUZ = 19,
  PJRT_Buffer_Type_F8E4M3FNUZ = 20,
  PJRT_Buffer_Type_S4 = 21,
  PJRT_Buffer_Type_U4 = 22,
  PJRT_Buffer_Type_TOKEN = 23,
  PJRT_Buffer_Type_S2 = 24,
  PJRT_Buffer_Type_U2 = 25,
  PJRT_Buffer_Type_F8E4M3 = 26,
  PJRT_Buffer_Type_F8E3M4 = 27,
  PJRT_Buffer_Type_F8E8M0FNU = 28,
  PJRT_Buffer_Type_F4E2M1FN = 29,
  PJRT_Buffer_Type_S1 = 30,
  PJRT_Buffer_Type_U1 = 31,
} PJRT_Buffer_Type;

typedef enum {
  PJRT_HostBufferSemantics_kImmutableOnlyDuringCall = 0,
  PJRT_HostBufferSemantics_kImmutableUntilTransferCompletes = 1,
  PJRT_HostBufferSemantics_kImmutableZeroCopy = 2,
  PJRT_HostBufferSemantics_kMutableZeroCopy = 3,
} PJRT_HostBufferSemantics;

typedef enum {
  PJRT_Buffer_MemoryLayout_Type_Tiled = 0,
  PJRT_Buffer_MemoryLayout_Type_Strides = 1,
} PJRT_Buffer_MemoryLayout_Type;

typedef struct PJRT_Buffer_MemoryLayout_Tiled {
  PJRT_ARGS_HEADER;
  const int64_t* minor_to_major;
  size_t minor_to_major_size;
  const int64_t* tile_dims;
  const size_t* tile_dim_sizes;
  size_t num_tiles;
} PJRT_Buffer_MemoryLayout_Tiled;

typedef struct PJRT_Buffer_MemoryLayout_Strides {
  PJRT_ARGS_HEADER;
  const int64_t* byte_strides;
  size_t num_byte_strides;
} PJRT_Buffer_MemoryLayout_Strides;

typedef struct PJRT_Buffer_MemoryLayout {
  PJRT_ARGS_HEADER;
  union {
    PJRT_Buffer_MemoryLayout_Tiled tiled;
    PJRT_Buffer_MemoryLayout_Strides strides;
  };
  PJRT_Buffer_MemoryLayout_Type type;
} PJRT_Buffer_MemoryLayout;

// Opaque handles. pyrt defines them in runtime.h; callers only see pointers.
typedef struct PJRT_Error PJRT_Error;
typedef struct PJRT_Event PJRT_Event;
typedef struct PJRT_Client PJRT_Client;
typedef struct PJRT_Device PJRT_Device;
typedef struct PJRT_DeviceDescription PJRT_DeviceDescription;
typedef struct PJRT_Memory PJRT_Memory;
typedef struct PJRT_Executable PJRT_Executable;
typedef struct PJRT_LoadedExecutable PJRT_LoadedExecutable;
typedef struct PJRT_Buffer PJRT_Buffer;
typedef struct PJRT_TopologyDescription PJRT_TopologyDescription;
typedef struct PJRT_ExecuteContext PJRT_ExecuteContext;
typedef struct PJRT_Device_Attributes PJRT_Device_Attributes;
typedef struct PJRT_SerializedExecutable PJRT_SerializedExecutable;
typedef struct PJRT_SerializedCompileOptions PJRT_SerializedCompileOptions;
typedef struct PJRT_DeviceAssignmentSerialized PJRT_DeviceAssignmentSerialized;

// ------------------------------------------------------------------ errors

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Error* error;
} PJRT_Error_Destroy_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  const PJRT_Error* error;
  const char* message;  // out, lives as long as `error`
  size_t message_size;  // out
} PJRT_Error_Message_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  const PJRT_Error* error;
  PJRT_Error_Code code;  // out
} PJRT_Error_GetCode_Args;

typedef void (*PJRT_Error_PayloadVisitor)(const char* key, size_t key_size, const char* value,
                                          size_t value_size, void* user_arg);
typedef struct {
  PJRT_ARGS_HEADER;
  const PJRT_Error* error;
  PJRT_Error_PayloadVisitor visitor;
  void* user_arg;
} PJRT_Error_ForEachPayload_Args;

// ------------------------------------------------------------------ plugin

typedef struct {
  PJRT_ARGS_HEADER;
} PJRT_Plugin_Initialize_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  const PJRT_NamedValue* attributes;  // out, process lifetime
  size_t num_attributes;              // out
} PJRT_Plugin_Attributes_Args;

// ------------------------------------------------------------------ events

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Event* event;
} PJRT_Event_Destroy_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Event* event;
  bool is_ready;  // out
} PJRT_Event_IsReady_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Event* event;
} PJRT_Event_Error_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Event* event;
} PJRT_Event_Await_Args;

// The callback owns `error` and must destroy it.
typedef void (*PJRT_Event_OnReadyCallback)(PJRT_Error* error, void* user_arg);
typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Event* event;
  PJRT_Event_OnReadyCallback callback;
  void* user_arg;
} PJRT_Event_OnReady_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Event* event;  // out
} PJRT_Event_Create_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Event* event;
  PJRT_Error_Code error_code;
  const char* error_message;
  size_t error_message_size;
} PJRT_Event_Set_Args;

// ------------------------------------------------------------------ client

// The key-value store jax.distributed shares between processes, as callbacks the caller of
// PJRT_Client_Create provides. A callback that fails returns an error it made with
// `callback_error`, which the implementation (we) provides and frees.
typedef PJRT_Error* (*PJRT_CallbackError)(PJRT_Error_Code code, const char* message,
                                          size_t message_size);
typedef void (*PJRT_KeyValueGetCallback_ValueDeleter)(char* value);

typedef struct {
  PJRT_ARGS_HEADER;
  const char* key;
  size_t key_size;
  int timeout_in_ms;
  PJRT_CallbackError* callback_error;
  void* user_arg;
  char* value;        // out
  size_t value_size;  // out
  PJRT_KeyValueGetCallback_ValueDeleter value_deleter_callback;  // out
} PJRT_KeyValueGetCallback_Args;
typedef PJRT_Error* (*PJRT_KeyValueGetCallback)(PJRT_KeyValueGetCallback_Args* args);

typedef struct {
  PJRT_ARGS_HEADER;
  const char* key;
  size_t key_size;
  const char* value;
  size_t value_size;
  PJRT_CallbackError* callback_error;
  void* user_arg;
} PJRT_KeyValuePutCallback_Args;
typedef PJRT_Error* (*PJRT_KeyValuePutCallback)(PJRT_KeyValuePutCallback_Args* args);

// What jax.distributed's coordination service knows of each process of the job
// (PJRT_Client_UpdateGlobalProcessInfo).
typedef enum {
  PJRT_ProcessState_kUnspecified = 0,
  PJRT_ProcessState_kUninitialized = 1,
  PJRT_ProcessState_kDisconnected = 2,
  PJRT_ProcessState_kConnected = 3,
  PJRT_ProcessState_kError = 4,
} PJRT_ProcessState;

typedef struct {
  size_t struct_size;
  int task_id;
  uint64_t incarnation_id;
  PJRT_ProcessState state;
  int error_code;
  const char* error_message;
  size_t error_message_size;
} PJRT_ProcessInfo;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  PJRT_ProcessInfo* process_infos;
  size_t num_process_infos;
} PJRT_Client_UpdateGlobalProcessInfo_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  const PJRT_NamedValue* create_options;
  size_t num_options;
  PJRT_KeyValueGetCallback kv_get_callback;
  void* kv_get_user_arg;
  PJRT_KeyValuePutCallback kv_put_callback;
  void* kv_put_user_arg;
  PJRT_Client* client;  // out
  void* kv_try_get_callback;  // unused: pyrt only needs get and put
  void* kv_try_get_user_arg;
} PJRT_Client_Create_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
} PJRT_Client_Destroy_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  const char* platform_name;  // out
  size_t platform_name_size;  // out
} PJRT_Client_PlatformName_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  int process_index;  // out
} PJRT_Client_ProcessIndex_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  const char* platform_version;  // out
  size_t platform_version_size;  // out
} PJRT_Client_PlatformVersion_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  PJRT_Device* const* devices;  // out
  size_t num_devices;           // out
} PJRT_Client_Devices_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  PJRT_Device* const* addressable_devices;  // out
  size_t num_addressable_devices;           // out
} PJRT_Client_AddressableDevices_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  int id;
  PJRT_Device* device;  // out
} PJRT_Client_LookupDevice_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  int local_hardware_id;
  PJRT_Device* addressable_device;  // out
} PJRT_Client_LookupAddressableDevice_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  PJRT_Memory* const* addressable_memories;  // out
  size_t num_addressable_memories;           // out
} PJRT_Client_AddressableMemories_Args;

typedef struct PJRT_Program {
  PJRT_ARGS_HEADER;
  char* code;  // in, or out for OptimizedProgram
  size_t code_size;
  const char* format;  // "mlir", "hlo", "hlo_with_config"
  size_t format_size;
} PJRT_Program;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  const PJRT_Program* program;
  const char* compile_options;  // serialized xla.CompileOptionsProto
  size_t compile_options_size;
  PJRT_LoadedExecutable* executable;  // out
} PJRT_Client_Compile_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  int num_replicas;
  int num_partitions;
  size_t default_assignment_size;
  int* default_assignment;  // caller-owned, we write num_replicas * num_partitions ids
} PJRT_Client_DefaultDeviceAssignment_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  const void* data;
  PJRT_Buffer_Type type;
  const int64_t* dims;
  size_t num_dims;
  const int64_t* byte_strides;  // may be empty: dense row-major
  size_t num_byte_strides;
  PJRT_HostBufferSemantics host_buffer_semantics;
  PJRT_Device* device;
  PJRT_Memory* memory;  // takes precedence over `device` when set
  PJRT_Buffer_MemoryLayout* device_layout;
  PJRT_Event* done_with_host_buffer;  // out
  PJRT_Buffer* buffer;                // out
} PJRT_Client_BufferFromHostBuffer_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  void* device_buffer_ptr;  // memory the caller owns (e.g. a DLPack tensor's)
  const int64_t* dims;
  size_t num_dims;
  PJRT_Buffer_Type element_type;
  PJRT_Buffer_MemoryLayout* layout;  // NULL: dense row-major
  PJRT_Device* device;
  // Optional; called once the buffer no longer needs device_buffer_ptr.
  void (*on_delete_callback)(void* device_buffer_ptr, void* user_arg);
  void* on_delete_callback_arg;
  intptr_t stream;  // platform stream whose work materializes the memory (none on pyrt)
  PJRT_Buffer* buffer;  // out
  PJRT_Memory* memory;  // takes precedence over `device` when set (newer callers only)
} PJRT_Client_CreateViewOfDeviceBuffer_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  const int64_t* shape_dims;
  size_t shape_num_dims;
  PJRT_Buffer_Type shape_element_type;
  PJRT_Buffer_MemoryLayout* shape_layout;
  PJRT_Device* device;
  PJRT_Memory* memory;
  PJRT_Buffer* buffer;  // out
} PJRT_Client_CreateUninitializedBuffer_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  PJRT_Error_Code error_code;
  const char* error_message;
  size_t error_message_size;
  const int64_t* shape_dims;
  size_t shape_num_dims;
  PJRT_Buffer_Type shape_element_type;
  PJRT_Buffer_MemoryLayout* shape_layout;
  PJRT_Memory* memory;
  PJRT_Buffer* buffer;  // out
} PJRT_Client_CreateErrorBuffer_Args;

// ------------------------------------------------------------------ device descriptions, devices

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_DeviceDescription* device_description;
  int id;  // out
} PJRT_DeviceDescription_Id_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_DeviceDescription* device_description;
  int process_index;  // out
} PJRT_DeviceDescription_ProcessIndex_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_DeviceDescription* device_description;
  size_t num_attributes;              // out
  const PJRT_NamedValue* attributes;  // out
} PJRT_DeviceDescription_Attributes_Args;

// Kind, DebugString and ToString share one shape: a description in, a string out.
typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_DeviceDescription* device_description;
  const char* string;  // out
  size_t string_size;  // out
} PJRT_DeviceDescription_String_Args;
typedef PJRT_DeviceDescription_String_Args PJRT_DeviceDescription_Kind_Args;
typedef PJRT_DeviceDescription_String_Args PJRT_DeviceDescription_DebugString_Args;
typedef PJRT_DeviceDescription_String_Args PJRT_DeviceDescription_ToString_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Device* device;
  PJRT_DeviceDescription* device_description;  // out
} PJRT_Device_GetDescription_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Device* device;
  bool is_addressable;  // out
} PJRT_Device_IsAddressable_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Device* device;
  int local_hardware_id;  // out
} PJRT_Device_LocalHardwareId_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Device* device;
  PJRT_Memory* const* memories;  // out
  size_t num_memories;           // out
} PJRT_Device_AddressableMemories_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Device* device;
  PJRT_Memory* memory;  // out
} PJRT_Device_DefaultMemory_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Device* device;
  int64_t bytes_in_use;
  int64_t peak_bytes_in_use;
  bool peak_bytes_in_use_is_set;
  int64_t num_allocs;
  bool num_allocs_is_set;
  int64_t largest_alloc_size;
  bool largest_alloc_size_is_set;
  int64_t bytes_limit;
  bool bytes_limit_is_set;
  int64_t bytes_reserved;
  bool bytes_reserved_is_set;
  int64_t peak_bytes_reserved;
  bool peak_bytes_reserved_is_set;
  int64_t bytes_reservable_limit;
  bool bytes_reservable_limit_is_set;
  int64_t largest_free_block_bytes;
  bool largest_free_block_bytes_is_set;
  int64_t pool_bytes;
  bool pool_bytes_is_set;
  int64_t peak_pool_bytes;
  bool peak_pool_bytes_is_set;
} PJRT_Device_MemoryStats_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Device* device;
  const PJRT_NamedValue* attributes;                                      // out
  size_t num_attributes;                                                  // out
  PJRT_Device_Attributes* device_attributes;                              // out
  void (*attributes_deleter)(PJRT_Device_Attributes* device_attributes);  // out
} PJRT_Device_GetAttributes_Args;

// ------------------------------------------------------------------ memories

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Memory* memory;
  int id;  // out
} PJRT_Memory_Id_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Memory* memory;
  const char* kind;  // out
  size_t kind_size;  // out
} PJRT_Memory_Kind_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Memory* memory;
  int kind_id;  // out
} PJRT_Memory_Kind_Id_Args;

// DebugString and ToString share one shape.
typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Memory* memory;
  const char* string;  // out
  size_t string_size;  // out
} PJRT_Memory_String_Args;
typedef PJRT_Memory_String_Args PJRT_Memory_DebugString_Args;
typedef PJRT_Memory_String_Args PJRT_Memory_ToString_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Memory* memory;
  PJRT_Device* const* devices;  // out
  size_t num_devices;           // out
} PJRT_Memory_AddressableByDevices_Args;

// ------------------------------------------------------------------ executables

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
} PJRT_Executable_Destroy_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  const char* executable_name;  // out
  size_t executable_name_size;  // out
} PJRT_Executable_Name_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  size_t num_replicas;  // out
} PJRT_Executable_NumReplicas_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  size_t num_partitions;  // out
} PJRT_Executable_NumPartitions_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  size_t num_outputs;  // out
} PJRT_Executable_NumOutputs_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  int64_t size_in_bytes;  // out
} PJRT_Executable_SizeOfGeneratedCodeInBytes_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  size_t num_properties;              // out
  const PJRT_NamedValue* properties;  // out, lives as long as `executable`
} PJRT_Executable_GetCostAnalysis_Args;

// The 0.105 layout (120 bytes); 0.112 appends three int64 fields (144 bytes) whose names are not
// public: we zero them.
typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  int64_t generated_code_size_in_bytes;       // out
  int64_t argument_size_in_bytes;             // out
  int64_t output_size_in_bytes;               // out
  int64_t alias_size_in_bytes;                // out
  int64_t temp_size_in_bytes;                 // out
  int64_t host_generated_code_size_in_bytes;  // out
  int64_t host_argument_size_in_bytes;        // out
  int64_t host_output_size_in_bytes;          // out
  int64_t host_alias_size_in_bytes;           // out
  int64_t host_temp_size_in_bytes;            // out
  int64_t peak_memory_in_bytes;               // out
  int64_t total_size_in_bytes;                // out
} PJRT_Executable_GetCompiledMemoryStats_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  size_t num_outputs;                // out
  const char* const* memory_kinds;   // out
  const size_t* memory_kind_sizes;   // out
} PJRT_Executable_OutputMemoryKinds_Args;

typedef PJRT_Executable_OutputMemoryKinds_Args PJRT_Executable_ParameterMemoryKinds_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  PJRT_Program* program;  // in/out: two-call size protocol on program->code
} PJRT_Executable_OptimizedProgram_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  const PJRT_Executable* executable;
  const char* serialized_bytes;                                           // out
  size_t serialized_bytes_size;                                           // out
  PJRT_SerializedExecutable* serialized_executable;                       // out
  void (*serialized_executable_deleter)(PJRT_SerializedExecutable* exec);  // out
} PJRT_Executable_Serialize_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  const char* serialized_bytes;                                                   // out
  size_t serialized_bytes_size;                                                   // out
  PJRT_SerializedCompileOptions* serialized_compile_options;                      // out
  void (*serialized_compile_options_deleter)(PJRT_SerializedCompileOptions* opts);  // out
} PJRT_Executable_GetCompileOptions_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  PJRT_Buffer_Type* output_types;  // out
  size_t num_output_types;         // out
} PJRT_Executable_OutputElementTypes_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  size_t num_outputs;       // out
  const int64_t* dims;      // out, all outputs' dims concatenated
  const size_t* dim_sizes;  // out, rank of each output
} PJRT_Executable_OutputDimensions_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  const char* executable_fingerprint;  // out
  size_t executable_fingerprint_size;  // out
} PJRT_Executable_Fingerprint_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  const char* serialized_executable;
  size_t serialized_executable_size;
  PJRT_LoadedExecutable* loaded_executable;  // out
  const char* overridden_serialized_compile_options;
  size_t overridden_serialized_compile_options_size;
} PJRT_Executable_DeserializeAndLoad_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_LoadedExecutable* executable;
} PJRT_LoadedExecutable_Destroy_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_LoadedExecutable* loaded_executable;
  PJRT_Executable* executable;  // out, caller destroys
} PJRT_LoadedExecutable_GetExecutable_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_LoadedExecutable* executable;
  PJRT_Device* const* addressable_devices;  // out
  size_t num_addressable_devices;           // out
} PJRT_LoadedExecutable_AddressableDevices_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_LoadedExecutable* executable;
} PJRT_LoadedExecutable_Delete_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_LoadedExecutable* executable;
  bool is_deleted;  // out
} PJRT_LoadedExecutable_IsDeleted_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_LoadedExecutable* executable;
  const char* executable_fingerprint;  // out
  size_t executable_fingerprint_size;  // out
} PJRT_LoadedExecutable_Fingerprint_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_LoadedExecutable* executable;
  const char* serialized_bytes;                                                  // out
  size_t serialized_bytes_size;                                                  // out
  PJRT_DeviceAssignmentSerialized* serialized_device_assignment;                 // out
  void (*serialized_device_assignment_deleter)(PJRT_DeviceAssignmentSerialized*);  // out
} PJRT_LoadedExecutable_GetDeviceAssignment_Args;

typedef struct PJRT_LogicalDeviceIds {
  int replica;
  int partition;
} PJRT_LogicalDeviceIds;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_LoadedExecutable* executable;
  PJRT_LogicalDeviceIds* addressable_device_logical_ids;  // out
  size_t num_addressable_device_logical_ids;              // out
} PJRT_LoadedExecutable_AddressableDeviceLogicalIds_Args;

// 0.112 appends three fields after multi_slice_config (144 bytes in all); their names are not
// public, so we declare through multi_slice_config and read no further.
typedef struct {
  PJRT_ARGS_HEADER;
  void** send_callbacks;
  void** recv_callbacks;
  size_t num_send_ops;
  size_t num_recv_ops;
  int launch_id;
  const int64_t* non_donatable_input_indices;
  size_t num_non_donatable_input_indices;
  PJRT_ExecuteContext* context;
  const char* call_location;
  size_t num_tasks;
  int* task_ids;
  int64_t* incarnation_ids;
  void* multi_slice_config;
} PJRT_ExecuteOptions;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_LoadedExecutable* executable;
  PJRT_ExecuteOptions* options;
  PJRT_Buffer* const* const* argument_lists;  // [num_devices][num_args]
  size_t num_devices;
  size_t num_args;
  PJRT_Buffer** const* output_lists;    // [num_devices][num_outputs], caller-allocated
  PJRT_Event** device_complete_events;  // [num_devices] out, may be NULL
  PJRT_Device* execute_device;
} PJRT_LoadedExecutable_Execute_Args;

// ------------------------------------------------------------------ buffers

// Most buffer queries take one buffer and return one scalar; each gets its own struct so the
// out field has the right type and offset.
#define PYRT_BUFFER_ARGS(name, out_decl) \
  typedef struct {                       \
    PJRT_ARGS_HEADER;                    \
    PJRT_Buffer* buffer;                 \
    out_decl;                            \
  } PJRT_Buffer_##name##_Args;

PYRT_BUFFER_ARGS(Destroy, )
PYRT_BUFFER_ARGS(ElementType, PJRT_Buffer_Type type)
PYRT_BUFFER_ARGS(OnDeviceSizeInBytes, size_t on_device_size_in_bytes)
PYRT_BUFFER_ARGS(Device, PJRT_Device* device)
PYRT_BUFFER_ARGS(Memory, PJRT_Memory* memory)
PYRT_BUFFER_ARGS(Delete, )
PYRT_BUFFER_ARGS(IsDeleted, bool is_deleted)
PYRT_BUFFER_ARGS(IsOnCpu, bool is_on_cpu)
PYRT_BUFFER_ARGS(ReadyEvent, PJRT_Event* event)
PYRT_BUFFER_ARGS(UnsafePointer, uintptr_t buffer_pointer)
PYRT_BUFFER_ARGS(IncreaseExternalReferenceCount, )
PYRT_BUFFER_ARGS(DecreaseExternalReferenceCount, )
PYRT_BUFFER_ARGS(OpaqueDeviceMemoryDataPointer, void* device_memory_ptr)
#undef PYRT_BUFFER_ARGS

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Buffer* buffer;
  const int64_t* dims;  // out
  size_t num_dims;      // out
} PJRT_Buffer_Dimensions_Args;
typedef PJRT_Buffer_Dimensions_Args PJRT_Buffer_UnpaddedDimensions_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Buffer* buffer;
  const size_t* dynamic_dim_indices;  // out
  size_t num_dynamic_dims;            // out
} PJRT_Buffer_DynamicDimensionIndices_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Buffer* src;
  PJRT_Buffer_MemoryLayout* host_layout;  // NULL: dense row-major
  void* dst;        // NULL asks for the size
  size_t dst_size;  // in/out
  PJRT_Event* event;  // out, must be non-NULL on success
} PJRT_Buffer_ToHostBuffer_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Buffer* buffer;
  void* dst;
  int64_t offset;
  int64_t transfer_size;
  PJRT_Event* event;  // out
} PJRT_Buffer_CopyRawToHost_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Buffer* buffer;
  PJRT_Device* dst_device;
  PJRT_Buffer* dst_buffer;  // out
} PJRT_Buffer_CopyToDevice_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Buffer* buffer;
  PJRT_Memory* dst_memory;
  PJRT_Buffer* dst_buffer;  // out
} PJRT_Buffer_CopyToMemory_Args;

// ------------------------------------------------------------------ extensions

#define PJRT_Extension_Type_Profiler 1
#define PJRT_Extension_Type_Layouts 4
#define PJRT_Extension_Type_Shardings 19

// The Profiler extension (pjrt_plugin/profiler_api.cc): jaxlib registers the plugin's profiler
// when it loads the plugin and drives it from jax.profiler. At jaxlib 0.10.2 the API is ten
// words (jaxlib refuses any other struct_size, then crashes), collect_data is called once,
// with a NULL buffer, and reads the plugin's buffer back, and jaxlib leaves the struct_size of
// the five calls' args unset (never read it). jaxlib also puts this struct, with a NULL
// profiler_api, on the extension_start of Compile and Execute args; pyrt ignores it there.
typedef struct PLUGIN_Profiler PLUGIN_Profiler;
typedef struct PLUGIN_Profiler_Error PLUGIN_Profiler_Error;

typedef struct {
  size_t struct_size;
  void* priv;
  PLUGIN_Profiler_Error* error;
} PLUGIN_Profiler_Error_Destroy_Args;

typedef struct {
  size_t struct_size;
  void* priv;
  const PLUGIN_Profiler_Error* error;
  const char* message;  // out, lives as long as error
  size_t message_size;  // out
} PLUGIN_Profiler_Error_Message_Args;

typedef struct {
  size_t struct_size;
  void* priv;
  const PLUGIN_Profiler_Error* error;
  int code;  // out
} PLUGIN_Profiler_Error_GetCode_Args;

typedef struct {
  size_t struct_size;
  const char* options;  // a serialized tensorflow.ProfileOptions
  size_t options_size;
  PLUGIN_Profiler* profiler;  // out
} PLUGIN_Profiler_Create_Args;

typedef struct {
  size_t struct_size;
  PLUGIN_Profiler* profiler;
} PLUGIN_Profiler_Args;  // destroy, start, stop

typedef struct {
  size_t struct_size;
  PLUGIN_Profiler* profiler;
  uint8_t* buffer;              // in: NULL or room to copy into; out: the plugin's buffer
  size_t buffer_size_in_bytes;  // out: the serialized XSpace's size
} PLUGIN_Profiler_CollectData_Args;

typedef struct {
  size_t struct_size;
  void* priv;
  void (*error_destroy)(PLUGIN_Profiler_Error_Destroy_Args* args);
  void (*error_message)(PLUGIN_Profiler_Error_Message_Args* args);
  PLUGIN_Profiler_Error* (*error_get_code)(PLUGIN_Profiler_Error_GetCode_Args* args);
  PLUGIN_Profiler_Error* (*create)(PLUGIN_Profiler_Create_Args* args);
  PLUGIN_Profiler_Error* (*destroy)(PLUGIN_Profiler_Args* args);
  PLUGIN_Profiler_Error* (*start)(PLUGIN_Profiler_Args* args);
  PLUGIN_Profiler_Error* (*stop)(PLUGIN_Profiler_Args* args);
  PLUGIN_Profiler_Error* (*collect_data)(PLUGIN_Profiler_CollectData_Args* args);
} PLUGIN_Profiler_Api;

typedef struct {
  PJRT_Extension_Base base;
  PLUGIN_Profiler_Api* profiler_api;
  int64_t traceme_context_id;  // 0 in the PJRT_Api's chain
} PJRT_Profiler_Extension;

// The Layouts extension. A layout crosses the ABI in XLA's text form ("{1,0}": minor-to-major
// dimensions), which jaxlib parses. Without the extension jaxlib derives executables' layouts
// from the HLO it converts Executable_OptimizedProgram to (see Shardings below).
typedef struct PJRT_Layouts_MemoryLayout PJRT_Layouts_MemoryLayout;
typedef struct PJRT_Layouts_SerializedLayout PJRT_Layouts_SerializedLayout;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Layouts_MemoryLayout* layout;
} PJRT_Layouts_MemoryLayout_Destroy_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Layouts_MemoryLayout* layout;
  const char* serialized_bytes;                       // out, lives as long as serialized_layout
  size_t serialized_bytes_size;                       // out
  PJRT_Layouts_SerializedLayout* serialized_layout;  // out
  void (*serialized_layout_deleter)(PJRT_Layouts_SerializedLayout* layout);  // out
} PJRT_Layouts_MemoryLayout_Serialize_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Client* client;
  PJRT_Buffer_Type type;
  const int64_t* dims;
  size_t num_dims;
  PJRT_Layouts_MemoryLayout* layout;  // out, freed with MemoryLayout_Destroy
} PJRT_Layouts_Client_GetDefaultLayout_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Buffer* buffer;
  PJRT_Layouts_MemoryLayout* layout;  // out, freed with MemoryLayout_Destroy
} PJRT_Layouts_Buffer_MemoryLayout_Args;

typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  size_t num_layouts;                   // out: num_outputs / num_parameters
  PJRT_Layouts_MemoryLayout** layouts;  // out, owned by the executable
} PJRT_Layouts_Executable_Layouts_Args;

typedef struct {
  PJRT_Extension_Base base;
  PJRT_Error* (*memory_layout_destroy)(PJRT_Layouts_MemoryLayout_Destroy_Args* args);
  PJRT_Error* (*memory_layout_serialize)(PJRT_Layouts_MemoryLayout_Serialize_Args* args);
  PJRT_Error* (*client_get_default_layout)(PJRT_Layouts_Client_GetDefaultLayout_Args* args);
  PJRT_Error* (*buffer_memory_layout)(PJRT_Layouts_Buffer_MemoryLayout_Args* args);
  PJRT_Error* (*topology_get_default_layout)(void* args);  // pyrt has no topology objects
  PJRT_Error* (*executable_output_layouts)(PJRT_Layouts_Executable_Layouts_Args* args);
  PJRT_Error* (*executable_parameter_layouts)(PJRT_Layouts_Executable_Layouts_Args* args);
} PJRT_Layouts_Extension;

// The Shardings extension (version 1): the OpSharding of each parameter and output of an
// executable. Without it jaxlib converts Executable_OptimizedProgram's StableHLO to HLO for
// every executable it loads, only to read the shardings.
typedef struct {
  PJRT_ARGS_HEADER;
  PJRT_Executable* executable;
  size_t num_shardings;             // out: num_parameters / num_outputs
  const char* const* shardings;     // out: serialized xla.OpSharding each, or NULL for none
  const size_t* sharding_sizes;     // out
} PJRT_Shardings_Executable_Shardings_Args;

typedef struct {
  PJRT_Extension_Base base;
  PJRT_Error* (*parameter_shardings)(PJRT_Shardings_Executable_Shardings_Args* args);
  PJRT_Error* (*output_shardings)(PJRT_Shardings_Executable_Shardings_Args* args);
} PJRT_Shardings_Extension;

// ------------------------------------------------------------------ the table

typedef struct PJRT_Api {
  size_t struct_size;
  PJRT_Extension_Base* extension_start;
  PJRT_Api_Version pjrt_api_version;
  void* slots[PYRT_PJRT_API_NUM_SLOTS];  // in the order of api_slots.inc
} PJRT_Api;

}  // extern "C"

static_assert(sizeof(PJRT_NamedValue) == 56, "PJRT_NamedValue layout");
static_assert(offsetof(PJRT_Api, slots) == 40, "PJRT_Api header layout");
static_assert(sizeof(PJRT_Api) == 1144, "PJRT_Api is 1144 bytes at 0.112");
static_assert(sizeof(PJRT_ExecuteOptions) == 120, "PJRT_ExecuteOptions through multi_slice_config");
static_assert(sizeof(PJRT_LoadedExecutable_Execute_Args) == 80, "Execute args are 80 bytes");
static_assert(sizeof(PJRT_Client_BufferFromHostBuffer_Args) == 120, "BufferFromHostBuffer args");
static_assert(sizeof(PJRT_Client_CreateViewOfDeviceBuffer_Args) == 112, "CreateViewOfDeviceBuffer args");
static_assert(sizeof(PJRT_Client_Compile_Args) == 56, "Compile args are 56 bytes");
static_assert(sizeof(PJRT_Buffer_ToHostBuffer_Args) == 56, "ToHostBuffer args are 56 bytes");
static_assert(sizeof(PJRT_Layouts_MemoryLayout_Serialize_Args) == 56, "Layouts serialize args");
static_assert(sizeof(PJRT_Layouts_Client_GetDefaultLayout_Args) == 56, "Layouts default args");
static_assert(sizeof(PJRT_Layouts_Executable_Layouts_Args) == 40, "Layouts executable args");
static_assert(sizeof(PJRT_Layouts_Extension) == 80, "Layouts extension: 7 methods at 0.112");
static_assert(sizeof(PJRT_Shardings_Executable_Shardings_Args) == 48, "Shardings args layout");
static_assert(sizeof(PJRT_Shardings_Extension) == 40, "Shardings extension layout");
static_assert(sizeof(PLUGIN_Profiler_Api) == 80, "jaxlib 0.10.2 accepts only the 80-byte API");
static_assert(sizeof(PJRT_Profiler_Extension) == 40, "Profiler extension layout");
static_assert(offsetof(PLUGIN_Profiler_CollectData_Args, buffer_size_in_bytes) == 24,
              "CollectData args layout");
static_assert(sizeof(PJRT_Device_MemoryStats_Args) == 0xb8 + 0x8, "MemoryStats args layout");

#endif  // PYRT_PJRT_PLUGIN_PJRT_ABI_H_
